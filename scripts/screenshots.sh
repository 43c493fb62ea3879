#!/usr/bin/env bash
# Regenerate docs/pages/*.png: every page usher itself serves, as a real
# headless Chromium shows it (sign-in, wrong password, rate limited,
# 403, already signed in, sign out, 502, 504, the
# plain-HTTP warning). Needs Debian's chromium and npm (playwright-core is
# installed under target/test-node; it downloads no browser).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
node_dir=target/test-node
[ -f "$node_dir/node_modules/playwright-core/package.json" ] \
    || (mkdir -p "$node_dir" && cd "$node_dir" && npm install --no-audit --no-fund --silent playwright-core@1)
cargo build --locked --bin usher
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
app=$(free); main=$(free); dead=$(free); gone=$(free)
# The app: /slow answers after 3 s (upstream.timeout is 1 s), else 200.
python3 - "$app" <<'PY' &
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(3)
        try:
            self.send_response(200); self.send_header("Content-Type", "text/plain"); self.end_headers()
            self.wfile.write(b"the app\n")
        except BrokenPipeError:
            pass  # usher gave up on /slow first (504)
    do_POST = do_GET
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
hash() { printf '%s\n' "$1" | target/debug/usher hash-password; }
cat > "$work/main.toml" <<TOML
[server]
listen = "127.0.0.1:$main"
[upstream]
url = "http://127.0.0.1:$app"
timeout = "1s"
[session]
secret_keys = ["screenshot-key-0123456789abcdef0123456789"]
[login]
ip_attempts_per_minute = 3
[[users]]
name = "alice"
password_hash = "$(hash wonderland)"
groups = ["admin"]
[[users]]
name = "bob"
password_hash = "$(hash builder)"
[access]
default = "anyone"
[[access.rules]]
path = "/closed/**"
groups = ["admin"]
TOML
sed -e "s/listen = \"127.0.0.1:$main\"/listen = \"127.0.0.1:$dead\"/" -e "s/:$app\"/:$gone\"/" "$work/main.toml" > "$work/dead.toml"
target/debug/usher run -c "$work/main.toml" 2>"$work/main.log" &
target/debug/usher run -c "$work/dead.toml" 2>"$work/dead.log" &
for p in "$main" "$dead"; do
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done
NODE_PATH="$PWD/$node_dir/node_modules" node scripts/screenshots.mjs \
    "http://127.0.0.1:$main" "http://127.0.0.1:$dead" docs/pages
