"""A Flask app that keeps its sign-in in Flask's default (cookie) session.

The app usher's migration tests put behind usher (and the one
docs/migrate-from-flask.md talks about). Run it with:

    SECRET_KEY=dev-secret-key python tests/apps/flask_app.py [PORT]

It prints "listening on http://127.0.0.1:PORT" once it accepts connections
(PORT 0, the default, picks a free port).

    GET /app/login?user=alice&groups=staff,admin   session["user"] = ... (the app's own sign-in)
    GET /app/whoami                                the session, and the X-Forwarded-User header received
    GET /app/count                                 session["count"] += 1 (the app writing its session)
    GET /app/flashes                               get_flashed_messages() (login flashes one)
    GET /app/write?patch={"cart":{"apple":2}}      answers with that Usher-Session merge patch
    GET /app/bytes                                 session["blob"] = b"..." (a value usher cannot represent)
    GET /app/logout                                session.clear()
"""

import os
import sys

from flask import Flask, flash, get_flashed_messages, request, session
from werkzeug.serving import make_server

app = Flask(__name__)
# Defaults: cookie "session", PERMANENT_SESSION_LIFETIME 31 days, path "/".
app.secret_key = os.environ["SECRET_KEY"]


def seen() -> dict:
    return {
        # Flask's JSON shows tuples as lists (the session keeps them) and
        # has no form for bytes.
        "session": {k: repr(v) if isinstance(v, bytes) else v for k, v in session.items()},
        "forwarded_user": request.headers.get("X-Forwarded-User"),
    }


@app.get("/app/login")
def login():
    session["user"] = request.args["user"]
    session["groups"] = [g for g in request.args.get("groups", "").split(",") if g]
    # A permanent session: Flask re-signs it on every response.
    session.permanent = True
    flash(f"Welcome, {session['user']}")
    return seen()


@app.get("/app/whoami")
def whoami():
    return seen()


@app.get("/app/count")
def count():
    session["count"] = session.get("count", 0) + 1
    return seen()


@app.get("/app/flashes")
def flashes():
    return {"flashes": get_flashed_messages()}


@app.get("/app/write")
def write():
    patch = request.args["patch"]
    return {"wrote": patch}, {"Usher-Session": patch}


@app.get("/app/bytes")
def store_bytes():
    session["blob"] = b"\x00raw bytes"
    return {"stored": True}


@app.get("/app/logout")
def logout():
    session.clear()
    return seen()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "0"))
    # The server behind Flask's `app.run`, made here to learn the port.
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()
