#!/usr/bin/env python3
"""Noise-free per-request counts: user-space instructions (valgrind
callgrind) and system calls (strace -c) for nginx, haproxy and usher.

Each server runs alone under the tool, twice: a short and a long wrk load
against the same fresh process type. The difference of the two totals over
the difference of the request counts cancels start-up and shutdown, so the
figure is the marginal cost of one request. Instruction counts do not depend
on the machine's load; they do depend on the toolchain and valgrind
versions. Started by `bench/run.sh --counts`; see docs/PERFORMANCE.md.
Python 3.11 standard library only.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as b  # noqa: E402  (the harness's servers and configs)

CONNECTIONS = 16
# (short, long) wrk durations in seconds; under valgrind a server answers
# a few thousand requests a second.
DURATIONS = (2, 6)
# Where to keep the long runs' callgrind files (--keep), for callgrind_annotate.
KEEP = None

SERVERS = {
    "b": "nginx proxy_pass, upstream keep-alive",
    "h": "haproxy, nbthread 1, http-reuse always",
    "c": "usher, valid session (verify + 3 headers + forward)",
    "d": "usher, public path, no session",
}


def nginx_single(work, port, backend):
    """The proxy nginx as one process (no master), so the tool sees it all."""
    prefix = work / "count-nginx"
    prefix.mkdir(exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""
    body = b.PROXY_SERVER.format(port=port, backend=backend, tls_port=b.free_port(),
                                 cert=work / "cert.pem", key=work / "key.pem")
    conf = prefix / "nginx.conf"
    conf.write_text("master_process off;\n" + b.NGINX_COMMON.format(user=user, prefix=prefix, body=body,
                                                                     nofile=4096))
    return ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]


def run_under(tool, cmd, port, path, headers, duration, work, env, label=""):
    """Start `cmd` under `tool`, load it for `duration` s, stop it; (total, requests)."""
    out = work / f"{tool}-{port}-{duration}-{time.monotonic_ns()}"
    if tool == "callgrind":
        wrapped = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
                   "--dump-instr=no", "--collect-jumps=no"] + cmd
    else:
        wrapped = ["strace", "-f", "-c", "-o", str(out)] + cmd
    proc = subprocess.Popen(["taskset", "-c", b.SERVER_CPU] + wrapped, env=env,
                            stdout=open(work / f"{out.name}.log", "w"), stderr=subprocess.STDOUT)
    try:
        b.wait_port(port, proc, " ".join(cmd[:1]), timeout=120)
        res, _ = b.run_wrk(port, path, headers, duration, CONNECTIONS)
    finally:
        # A graceful stop lets the tool write its totals: nginx and haproxy
        # drain on SIGQUIT / SIGUSR1, usher on SIGTERM.
        sig = {"nginx": signal.SIGQUIT, "haproxy": signal.SIGUSR1}.get(Path(cmd[0]).name, signal.SIGTERM)
        # Under strace the process started is strace: signal the traced
        # server (its child), and strace writes the totals once it exits.
        target = b.children(proc.pid)[:1] if tool == "strace" else []
        os.kill(target[0] if target else proc.pid, sig)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=30)
    if tool == "callgrind":
        total = 0
        for f in work.glob(out.name + ".*"):
            if f.suffix == ".log":
                continue
            if KEEP and duration == DURATIONS[1]:
                shutil.copy(f, KEEP / f"{Path(cmd[0]).name}-{label}.callgrind")
            for line in f.read_text(errors="replace").splitlines():
                if line.startswith("summary:") or line.startswith("totals:"):
                    total += int(line.split()[1])
                    break
    else:
        # The last line: "100.00 seconds usecs/call calls [errors] total".
        line = next((ln for ln in out.read_text(errors="replace").splitlines() if ln.rstrip().endswith("total")), "")
        fields = line.split()
        total = int(fields[3]) if len(fields) >= 5 and fields[3].isdigit() else 0
    return total, res["requests"]


def per_request(tool, cmd, port, path, headers, work, env, label):
    (t1, n1), (t2, n2) = (run_under(tool, cmd, port, path, headers, d, work, env, label) for d in DURATIONS)
    if n2 <= n1 or t2 <= t1:
        raise SystemExit(f"{tool} {cmd[0]}: the long run did not add requests ({n1} -> {n2}) or counts")
    return (t2 - t1) / (n2 - n1), n2 - n1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--usher", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="bhcd", help="servers to count (letters of " + "".join(SERVERS) + ")")
    ap.add_argument("--tools", default="callgrind,strace")
    ap.add_argument("--guard", metavar="JSON",
                    help="count (c) under callgrind only and fail (exit 1) when it is more than 5 %% above "
                         "the figure in this counts.json")
    ap.add_argument("--keep", metavar="DIR",
                    help="copy each long run's callgrind output here (<server>-<config>.callgrind) for "
                         "callgrind_annotate --inclusive=yes")
    args = ap.parse_args()
    global KEEP
    if args.keep:
        KEEP = Path(args.keep).resolve()
        KEEP.mkdir(parents=True, exist_ok=True)
    if args.guard:
        args.only, args.tools = "c", "callgrind"
    work = Path(tempfile.mkdtemp(prefix="usher-counts-"))
    os.chmod(work, 0o755)
    procs = []
    try:
        backend_port = b.free_port()
        procs.append(b.start_backend(work, backend_port, {"100B": 100}))
        b.make_cert(work)
        env = dict(os.environ, USHER_SECRET_KEYS="counts-" + os.urandom(24).hex(), RUST_LOG="warn")
        rows = []
        for cfg in args.only:
            port = b.free_port()
            headers, path = [], "/data/100B"
            if cfg == "b":
                cmd = nginx_single(work, port, backend_port)
            elif cfg == "h":
                conf = work / f"haproxy-{port}.cfg"
                conf.write_text(b.HAPROXY.format(port=port, backend=backend_port))
                cmd = ["haproxy", "-f", str(conf), "-db"]
            else:
                conf = b.usher_config(work, port, backend_port, name=f"usher-{cfg}")
                cmd = [args.usher, "run", "-c", str(conf)]
                if cfg == "c":
                    headers = [f"Cookie: {b.COOKIE_NAME}={b.session_cookie(args.usher, conf, env)}"]
                else:
                    path = "/public/100B"
            row = {"config": cfg, "server": SERVERS[cfg]}
            for tool in args.tools.split(","):
                value, requests = per_request(tool, cmd, port, path, headers, work, env, cfg)
                row[tool] = value
                row[f"{tool}_requests"] = requests
                b.log(f"counts ({cfg}) {tool}: {value:,.2f} per request over {requests:,} requests")
            rows.append(row)
        def version(cmd):
            p = subprocess.run(cmd, capture_output=True, text=True)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        result = {
            "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "valgrind": version(["valgrind", "--version"]),
            "strace": version(["strace", "-V"]),
            "rustc": version(["rustc", "--version"]),
            "connections": CONNECTIONS, "durations_s": DURATIONS,
            "rows": rows,
        }
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "counts.json").write_text(json.dumps(result, indent=1) + "\n")
        lines = ["# Per-request counts", "",
                 f"Run {result['finished']}; {result['valgrind']}, {result['strace']}, {result['rustc']}; "
                 f"wrk -t1 -c{CONNECTIONS}, the difference of a {DURATIONS[0]} s and a {DURATIONS[1]} s load on "
                 "fresh processes, 100-byte body, one server alone on cpu0.", "",
                 "| config | user-space instructions / request (callgrind) | syscalls / request (strace -c) |",
                 "| --- | ---: | ---: |"]
        for r in rows:
            ins = f"{r['callgrind'] / 1000:,.1f} k" if "callgrind" in r else "–"
            sys_ = f"{r['strace']:.2f}" if "strace" in r else "–"
            lines.append(f"| ({r['config']}) {r['server']} | {ins} | {sys_} |")
        (out / "counts.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        if args.guard:
            base = json.loads(Path(args.guard).read_text())
            committed = next(r["callgrind"] for r in base["rows"] if r["config"] == "c")
            now = rows[0]["callgrind"]
            ratio = now / committed
            b.log(f"guard: (c) {now:,.0f} instructions per request, committed {committed:,.0f} "
                  f"({base.get('valgrind')}, {base.get('rustc')}): {ratio:.3f}x")
            if ratio > 1.05:
                raise SystemExit(
                    f"usher's instructions per authenticated request rose {100 * (ratio - 1):.1f} % above the "
                    f"figure in {args.guard} (limit 5 %). If the rise is understood and accepted (or the "
                    "toolchain or valgrind changed), re-baseline with `bench/run.sh --counts` and commit "
                    "bench/results/counts.* in a reviewed change.")
    finally:
        for g in procs:
            g.proc.terminate()
            g.proc.wait(timeout=10)


if __name__ == "__main__":
    main()
