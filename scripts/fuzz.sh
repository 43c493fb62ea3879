#!/usr/bin/env bash
# Run every cargo-fuzz target for a while (default 300 s each), one after the
# other, then minimise each corpus back into fuzz/corpus. Not part of CI:
# the test suite replays fuzz/corpus and fuzz/artifacts without cargo-fuzz.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs `cargo install --locked cargo-fuzz`; runs on stable Rust through
# RUSTC_BOOTSTRAP=1 (cargo-fuzz wants nightly flags). Prints one summary line
# per target (executions, coverage, crashes) into target/fuzz-summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^usher-fuzz$')
fi
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install --locked cargo-fuzz" >&2; exit 1; }
summary=target/fuzz-summary.txt
mkdir -p target
: > "$summary"
for t in "${targets[@]}"; do
    log="target/fuzz-$t.log"
    work="target/fuzz-corpus/$t"
    mkdir -p "$work"
    cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
    # `|| true`: a crash ends the run with an error; it is reported below.
    (cd fuzz && cargo fuzz run "$t" "../$work" -- -max_total_time="$seconds" -print_final_stats=1 \
        -rss_limit_mb=2048) >"$log" 2>&1 || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    crashes=$(find fuzz/artifacts/"$t" -type f ! -name .gitkeep | wc -l)
    echo "$t seconds=$seconds execs=${execs:-?} cov=${cov:-?} crashes=$crashes" | tee -a "$summary"
    # Keep a minimised corpus in the tree.
    (cd fuzz && cargo fuzz cmin "$t" "../$work" >/dev/null 2>&1) || true
    rm -f fuzz/corpus/"$t"/*
    cp "$work"/* fuzz/corpus/"$t"/
done
