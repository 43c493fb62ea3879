#!/usr/bin/env bash
# Run every test usher has, on a fresh machine: installs what the tests need
# (idempotently), then runs the unit and integration suites.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the integration tests drive as real peers; a missing peer
# is a failure, not a skip.
#   apache2-utils  htpasswd, to make bcrypt fixtures the way operators do
#   chromium       a real browser signing in through the sign-in page
need_apt=()
for pkg in apache2-utils chromium; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# Python peers, in a virtualenv under target/ (idempotent):
#   prometheus-client          a real OpenMetrics parser for /metrics
#   fastapi uvicorn itsdangerous  a real FastAPI app with SessionMiddleware
#   flask                      a real Flask app with its signed session
venv=target/test-venv
if ! "$venv/bin/python" -c 'import prometheus_client, fastapi, uvicorn, flask, itsdangerous' >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q prometheus-client fastapi uvicorn flask itsdangerous
fi

cargo test --all-targets --locked
