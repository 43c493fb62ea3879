"""A FastAPI app that keeps its sign-in in Starlette's SessionMiddleware.

The app usher's migration tests put behind usher (and the one
docs/migrate-from-starlette.md talks about). Run it with:

    SECRET_KEY=dev-secret-key python tests/apps/fastapi_app.py [PORT]

It prints "listening on http://127.0.0.1:PORT" once it accepts connections
(PORT 0, the default, picks a free port).

    GET /app/login?user=alice&groups=staff,admin   request.session["user"] = ... (the app's own sign-in)
    GET /app/whoami                                the session, and the X-Forwarded-User header received
    GET /app/count                                 request.session["count"] += 1 (the app writing its session)
    GET /app/write?patch={"cart":{"apple":2}}      answers with that Usher-Session merge patch
    GET /app/logout                                request.session.clear()
"""

import os
import socket
import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.sessions import SessionMiddleware

app = FastAPI()
# Defaults: cookie "session", max_age 14 days, path "/", SameSite=lax.
app.add_middleware(SessionMiddleware, secret_key=os.environ["SECRET_KEY"])


def seen(request: Request) -> dict:
    return {
        "session": dict(request.session),
        "forwarded_user": request.headers.get("x-forwarded-user"),
    }


@app.get("/app/login")
def login(request: Request, user: str, groups: str = ""):
    request.session["user"] = user
    request.session["groups"] = [g for g in groups.split(",") if g]
    return seen(request)


@app.get("/app/whoami")
def whoami(request: Request):
    return seen(request)


@app.get("/app/count")
def count(request: Request):
    request.session["count"] = request.session.get("count", 0) + 1
    return seen(request)


@app.get("/app/write")
def write(patch: str):
    return JSONResponse({"wrote": patch}, headers={"Usher-Session": patch})


@app.get("/app/logout")
def logout(request: Request):
    request.session.clear()
    return seen(request)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "0"))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
