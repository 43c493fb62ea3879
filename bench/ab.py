#!/usr/bin/env python3
"""Interleaved native A/B of two usher binaries: the same nginx backend, the
authenticated 100-byte case (c) or the public one (d), alternating A, B, A,
B... on fresh processes pinned to cpu0 (wrk on cpu1). Prints each pair and
the medians of B/A for throughput and of usher's CPU per request. Used for
the per-change figures in CHANGELOG.md; see docs/PERFORMANCE.md.

    python3 bench/ab.py --a base/usher --b target/release/usher --pairs 4

Python 3.11 standard library only.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as b  # noqa: E402


def one(binary, work, backend_port, cfg, duration, connections, env):
    port = b.free_port()
    conf = b.usher_config(work, port, backend_port, name=f"ab-{port}")
    proc = subprocess.Popen(["taskset", "-c", b.SERVER_CPU, binary, "run", "-c", str(conf)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        b.wait_port(port, proc, "usher")
        headers, path = [], "/public/100B"
        if cfg == "c":
            headers = [f"Cookie: {b.COOKIE_NAME}={b.session_cookie(binary, conf, env)}"]
            path = "/data/100B"
        b.run_wrk(port, path, headers, 1, connections)  # warm-up
        u0, s0 = b.proc_ticks(proc.pid)
        res, _ = b.run_wrk(port, path, headers, duration, connections)
        u1, s1 = b.proc_ticks(proc.pid)
        n = max(res["requests"], 1)
        if sum(res["errors"].values()) or res.get("non2xx", 0):
            raise SystemExit(f"{binary}: errors in the run: {res}")
        return {"rps": res["requests"] / (res["duration_us"] / 1e6),
                "cpu_us": ((u1 - u0) + (s1 - s0)) / b.CLK_TCK * 1e6 / n,
                "user_us": (u1 - u0) / b.CLK_TCK * 1e6 / n}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the base binary")
    ap.add_argument("--b", required=True, help="the changed binary")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--config", choices=("c", "d"), default="c")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="usher-ab-"))
    os.chmod(work, 0o755)
    backend_port = b.free_port()
    backend = b.start_backend(work, backend_port, {"100B": 100})
    env = dict(os.environ, USHER_SECRET_KEYS="ab-" + os.urandom(24).hex(), RUST_LOG="warn")
    ratios, cpu_ratios = [], []
    try:
        for i in range(args.pairs):
            # Alternate which side goes first, so drift over time hits both.
            order = ("a", "b") if i % 2 == 0 else ("b", "a")
            got = {}
            for side in order:
                got[side] = one(getattr(args, side), work, backend_port, args.config, args.duration,
                                args.connections, env)
            ratios.append(got["b"]["rps"] / got["a"]["rps"])
            cpu_ratios.append(got["b"]["cpu_us"] / got["a"]["cpu_us"])
            print(f"pair {i + 1}: A {got['a']['rps']:,.0f} req/s {got['a']['cpu_us']:.1f} us "
                  f"(user {got['a']['user_us']:.1f}), B {got['b']['rps']:,.0f} req/s {got['b']['cpu_us']:.1f} us "
                  f"(user {got['b']['user_us']:.1f}); B/A {ratios[-1]:.3f}", flush=True)
        print(f"({args.config}) B/A throughput median {statistics.median(ratios):.3f} "
              f"({min(ratios):.3f}-{max(ratios):.3f}); usher CPU per request B/A median "
              f"{statistics.median(cpu_ratios):.3f}")
    finally:
        backend.proc.terminate()
        backend.proc.wait(timeout=10)


if __name__ == "__main__":
    main()
