#!/usr/bin/env bash
# Soak usher for N minutes (default 10) under a mix of traffic and faults
# against a real nginx backend; reports errors, RSS over time and lost
# requests. Not part of CI: run by hand, figures go to docs/operations.md.
#
#   scripts/soak.sh --minutes N [--threads N]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
}
cargo build --release --locked --bin usher
exec python3 scripts/soak.py "$@"
