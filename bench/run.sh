#!/usr/bin/env bash
# usher side-by-side benchmark: the one command.
#
#   bench/run.sh            full run (5 rounds x 10 s per configuration and
#                           body, 5,000 idle clients, criterion benches);
#                           writes bench/results/latest.{md,json}
#   bench/run.sh --smoke    a few seconds: every configuration answers and a
#                           report is produced (in a temp dir); for CI
#   bench/run.sh --counts   noise-free: callgrind instructions and strace
#                           syscalls per request for nginx, haproxy and usher
#                           (bench/counts.py); writes bench/results/counts.{md,json}
#   bench/run.sh --guard    for CI: fails when usher's instructions per
#                           authenticated request are >5 % above counts.json
#
# Any other option goes to bench/bench.py (--rounds N, --duration S,
# --connections N, --idle N, --max-foreign CORES, --max-steal CORES,
# --out DIR, --keep-work).
# USHER_BIN=path skips the cargo build and uses that binary.
# Installs nginx, haproxy, wrk, openssl (a test certificate) and
# redis-server (the Redis-store row) from Debian when
# missing (needs root or sudo).
# See docs/PERFORMANCE.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

smoke=0
criterion=1
counts=0
args=()
for a in "$@"; do
  case "$a" in
    --counts) counts=1; criterion=0 ;;
    --guard) counts=1; criterion=0; args+=(--guard "$root/bench/results/counts.json") ;;
    --smoke) smoke=1; criterion=0; args+=("$a") ;;
    --no-criterion) criterion=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exec python3 "$here/bench.py" --help ;;
    *) args+=("$a") ;;
  esac
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- tools from Debian, installed once --------------------------------------
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ "$counts" -eq 1 ]; then
  command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
  command -v strace >/dev/null 2>&1 || need+=(strace)
fi
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
if [ "${#need[@]}" -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
export PATH="$PATH:/usr/sbin:/sbin"

if [ "$(nproc)" -lt 2 ]; then
  echo "bench: needs 2 CPUs (servers on cpu0, wrk on cpu1); this machine has $(nproc)" >&2
  exit 1
fi

# --- usher ------------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-$root/target}"
if [ -n "${USHER_BIN:-}" ]; then
  usher="$USHER_BIN"
elif [ "$smoke" -eq 1 ]; then
  # The test build already made the debug binary; smoke only proves the harness.
  log "cargo build (debug)"
  cargo build --quiet --bin usher
  usher="$target_dir/debug/usher"
else
  log "cargo build --release"
  cargo build --release --quiet --bin usher
  usher="$target_dir/release/usher"
fi

if [ "$criterion" -eq 1 ]; then
  log "criterion: cargo bench --bench codec --bench headers"
  taskset -c "1" cargo bench --quiet --bench codec --bench headers >&2
  args+=(--criterion-target "$target_dir")
fi

# --- open files: 5,000 idle clients and as many server sockets ---------------
ulimit -Hn 65536 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

out="$root/bench/results"
[ "$smoke" -eq 0 ] || out="${TMPDIR:-/tmp}/usher-bench-smoke"

if [ "$counts" -eq 1 ]; then
  log "counts: callgrind and strace, one server at a time"
  case " ${args[*]} " in
    *" --guard "*) out="${TMPDIR:-/tmp}/usher-bench-guard" ;;
  esac
  python3 "$here/counts.py" --usher "$usher" --out "$out" "${args[@]}"
  exit 0
fi

start=$(date +%s)
python3 "$here/bench.py" --usher "$usher" --out "$out" "${args[@]}"
log "done in $(( $(date +%s) - start )) s; report in $out/latest.md"
