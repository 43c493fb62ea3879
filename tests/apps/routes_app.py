"""A Flask app whose routing the attack tests lean on (Werkzeug's, unchanged).

    python tests/apps/routes_app.py [PORT]

It prints "listening on http://127.0.0.1:PORT" once it accepts connections.
Every route answers JSON naming the view that ran, the method Flask saw
(Werkzeug upper-cases it), the path it routed and the identity header:

    /admin/<path>    view "admin"   (Werkzeug does not remove ../ from the path)
    /public/<path>   view "public"
    anything else    view "other"
"""

import sys

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

app = Flask(__name__)
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]


def seen(view: str):
    return jsonify(
        view=view,
        method=request.method,
        path=request.path,
        user=request.headers.get("X-Forwarded-User"),
    )


@app.route("/admin/<path:rest>", methods=METHODS)
def admin(rest):
    return seen("admin")


@app.route("/public/<path:rest>", methods=METHODS)
def public(rest):
    return seen("public")


@app.route("/<path:rest>", methods=METHODS)
def other(rest):
    return seen("other")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = make_server("127.0.0.1", port, app)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()
