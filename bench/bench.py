#!/usr/bin/env python3
"""usher side-by-side benchmark: orchestration and report.

Started by bench/run.sh (which installs nginx and wrk, builds usher and
raises the open-file limit); see docs/PERFORMANCE.md for the method.

Configurations, all on 127.0.0.1, every server pinned to cpu0 and wrk to cpu1:
  a  backend direct          nginx serving static files (the backend)
  b  nginx proxy_pass        upstream keep-alive to the backend
  h  haproxy                 haproxy 2.6, nbthread 1, http-reuse always (the other
                             one-core proxy peer)
  c  usher, authenticated    valid session cookie: verify + 3 headers + forward
  d  usher, public path      /public/** allow = "anyone", no cookie
  e  usher, Redis store      the same as (c) with [session.store] kind = "redis":
                             the cookie names a session loaded from a local
                             redis-server (also on cpu0, counted as proxy CPU)
  f  usher, assertion        (c) plus [upstream.assertion] (ES256): a signed JWT
                             per request, cached per session
  g  usher, API key          Authorization: Bearer usher_... instead of a cookie
                             (argon2-checked once, then remembered)
each with a 100-byte and a 64 KiB body, interleaved over several rounds.
Python 3.11 standard library only.
"""

import argparse
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SERVER_CPU = "0"
CLIENT_CPU = "1"

BODIES = {"100B": 100, "64KiB": 65536}
CONFIGS = {
    "a": "backend direct (nginx static)",
    "b": "nginx proxy_pass, upstream keep-alive",
    "h": "haproxy, nbthread 1, http-reuse always",
    "c": "usher, valid session (verify + 3 headers + forward)",
    "d": "usher, public path, no session",
    "e": "usher, valid session, Redis store (load + 3 headers + forward; CPU incl. redis-server)",
    "f": "usher, valid session + identity assertion (ES256, cached)",
    "g": "usher, API key (Authorization: Bearer usher_...)",
}
# Configurations that send a credential (a cookie, an API key).
WITH_COOKIE = ("c", "e", "f", "g")
# Idle-test servers: the plain ones above, and the same two terminating TLS.
IDLE_LABELS = {"b": "nginx", "c": "usher", "bt": "nginx, TLS", "ct": "usher, TLS"}
SESSION_JSON = '{"user":"bench","email":"bench@example.com","groups":["a","b"]}'
COOKIE_NAME = "usher_session"

# Noise rule (see docs/PERFORMANCE.md). CPU used by anything but our own
# servers, wrk and this script, in cores (1.0 = one core busy all the time).
# Our servers are CPU-bound on cpu0, so foreign work steals throughput
# roughly in proportion; 0.10 core keeps that under about a tenth of a core,
# above the round-to-round spread of a quiet machine (a few per cent).
DEFAULT_MAX_FOREIGN = 0.10
# CPU time the hypervisor gave to other guests while ours wanted it, in
# cores. It slows both proxies, but not evenly, since runs are sequential;
# the same bound as for foreign CPU.
DEFAULT_MAX_STEAL = 0.10


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc ---

def proc_ticks(pid):
    """(utime, stime) of a process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14, stime field 15.
    return int(fields[11]), int(fields[12])


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except FileNotFoundError:
        pass
    return out


def cpu_times():
    """(busy, steal) jiffies over all CPUs from /proc/stat.

    busy = user + nice + system + irq + softirq (not idle, iowait, steal).
    """
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
    return user + nice + system + irq + softirq, steal


def loadavg():
    with open("/proc/loadavg") as f:
        p = f.read().split()
    return {"1m": float(p[0]), "5m": float(p[1]), "15m": float(p[2]), "runnable": p[3]}


def sockstat_tcp_mem():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                p = line.split()
                return int(p[p.index("mem") + 1])  # pages
    return 0


# -------------------------------------------------------------- servers ---

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on port {port} within {timeout}s")


class Group:
    """A server: the process we started plus its children (nginx workers)."""

    def __init__(self, name, proc):
        self.name, self.proc = name, proc

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid) + [p for g in getattr(self, "with_", []) for p in g.pids()]

    def ticks(self):
        """(user, system) clock ticks of the process and its children."""
        user = system = 0
        for pid in self.pids():
            try:
                u, s = proc_ticks(pid)
            except FileNotFoundError:
                continue
            user, system = user + u, system + s
        return user, system

    def rss_kb(self):
        return sum(proc_status(p, "VmRSS") for p in self.pids())

    def main_rss_kb(self):
        """RSS of the process that holds client connections (nginx: the worker)."""
        kids = children(self.proc.pid)
        return proc_status(kids[0] if kids else self.proc.pid, "VmRSS")


NGINX_COMMON = """\
worker_processes 1;
daemon off;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_rlimit_nofile {nofile};
events {{ worker_connections 16384; }}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/client_temp;
    proxy_temp_path {prefix}/proxy_temp;
    fastcgi_temp_path {prefix}/fastcgi_temp;
    uwsgi_temp_path {prefix}/uwsgi_temp;
    scgi_temp_path {prefix}/scgi_temp;
{body}
}}
"""

BACKEND_SERVER = """\
    open_file_cache max=64 inactive=300s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {docroot};
        location = /echo {{
            default_type text/plain;
            return 200 "$http_x_forwarded_user|$http_x_forwarded_email|$http_x_forwarded_groups";
        }}
        location = /assertion {{
            default_type text/plain;
            return 200 "$http_x_usher_assertion";
        }}
    }}
"""

PROXY_SERVER = """\
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        listen 127.0.0.1:{tls_port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""


def make_cert(work):
    """A self-signed P-256 certificate for 127.0.0.1, for the TLS idle test."""
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def start_nginx(name, work, body):
    prefix = work / name
    prefix.mkdir(exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if nofile == resource.RLIM_INFINITY or nofile > 65536:
        nofile = 65536
    conf.write_text(NGINX_COMMON.format(user=user, prefix=prefix, body=body, nofile=nofile))
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, "nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
        stdout=open(prefix / "stdout.log", "w"), stderr=subprocess.STDOUT,
    )
    return Group(name, proc)


HAPROXY = """\
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    option http-keep-alive
    http-reuse always
frontend bench
    bind 127.0.0.1:{port}
    default_backend backend
backend backend
    server nginx 127.0.0.1:{backend}
"""


def start_haproxy(work, port, backend):
    conf = work / "haproxy.cfg"
    conf.write_text(HAPROXY.format(port=port, backend=backend))
    proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, "haproxy", "-f", str(conf), "-db"],
                            stdout=open(work / "haproxy.log", "w"), stderr=subprocess.STDOUT)
    return Group("haproxy", proc)


def usher_config(work, port, backend, tls=None, redis=None, name="usher", extra=""):
    """usher's config; `tls` = (cert, key) makes it terminate TLS; `redis` =
    a port puts sessions in that redis-server; `extra` is appended."""
    path = work / ("usher-tls.toml" if tls else "usher-redis.toml" if redis else f"{name}.toml")
    tls_keys = f'tls_cert = "{tls[0]}"\ntls_key = "{tls[1]}"\n' if tls else ""
    store = f'[session.store]\nkind = "redis"\nurl = "redis://127.0.0.1:{redis}"\n' if redis else ""
    path.write_text(f"""\
[server]
listen = "127.0.0.1:{port}"
{tls_keys}
[upstream]
url = "http://127.0.0.1:{backend}"

[session]
cookie_name = "{COOKIE_NAME}"
secure = false
{store}

[session.forward]
"X-Forwarded-User" = "user"
"X-Forwarded-Email" = "email"
"X-Forwarded-Groups" = "groups"

[access]
default = "authenticated"

[[access.rules]]
path = "/public/**"
allow = "anyone"
{extra}
""")
    return path


# ----------------------------------------------------------------- load ---

def run_wrk(port, path, headers, duration, connections):
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
           "--timeout", "5s", "-s", str(HERE / "report.lua")]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # cumulative; caller diffs
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed ({proc.returncode}): {err.strip()}")
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[8:]), ru.ru_utime + ru.ru_stime
    raise SystemExit(f"wrk printed no summary:\n{out}\n{err}")


def quiet_busy(seconds):
    """Cores busy while our servers are idle: the machine's background load."""
    b0, s0 = cpu_times()
    t0 = time.monotonic()
    time.sleep(seconds)
    b1, s1 = cpu_times()
    dt = time.monotonic() - t0
    return (b1 - b0) / CLK_TCK / dt, (s1 - s0) / CLK_TCK / dt


def wait_quiet(quiet, threshold, max_steal, max_wait):
    """Sample the background load and steal; while either is above its bound, wait (at most max_wait s)."""
    start = time.monotonic()
    while True:
        busy, steal = quiet_busy(quiet)
        if (busy <= threshold and steal <= max_steal) or time.monotonic() - start >= max_wait:
            return busy, steal, time.monotonic() - start - quiet


def one_run(env, cfg, body, duration, quiet=0.0, threshold=DEFAULT_MAX_FOREIGN, max_wait=0.0,
            max_steal=DEFAULT_MAX_STEAL):
    group = env["proxy"][cfg]
    backend = env["backend"]
    port = env["ports"][cfg]
    path = ("/public/" if cfg == "d" else "/data/") + body
    headers = [env["cookie_headers"][cfg]] if cfg in WITH_COOKIE else []
    pre_load = loadavg()
    q_busy, q_steal, waited = wait_quiet(quiet, threshold, max_steal, max_wait) if quiet else (None, None, 0.0)
    pre_load = loadavg() if waited > 0.5 else pre_load
    groups = [backend] + ([group] if group is not backend else [])
    t0 = {g.name: g.ticks() for g in groups}
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk0 = c0.ru_utime + c0.ru_stime
    busy0, steal0 = cpu_times()
    w0 = time.monotonic()
    res, wrk1 = run_wrk(port, path, headers, duration, env["connections"])
    wall = time.monotonic() - w0
    busy1, steal1 = cpu_times()
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    t1 = {g.name: g.ticks() for g in groups}
    n = max(res["requests"], 1)
    user_s = {k: (t1[k][0] - t0[k][0]) / CLK_TCK for k in t0}
    sys_s = {k: (t1[k][1] - t0[k][1]) / CLK_TCK for k in t0}
    cpu_s = {k: user_s[k] + sys_s[k] for k in t0}
    ours = sum(cpu_s.values()) + (wrk1 - wrk0) + (
        self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime)
    foreign = max(0.0, (busy1 - busy0) / CLK_TCK - ours) / wall
    run = {
        "config": cfg, "body": body,
        "load_before": pre_load,
        "quiet_busy_cores": q_busy, "quiet_steal_cores": q_steal, "waited_for_quiet_s": round(waited, 1),
        "foreign_cores": round(foreign, 4),
        "steal_cores": round((steal1 - steal0) / CLK_TCK / wall, 4),
        "wrk": res,
        "rps": res["requests"] / (res["duration_us"] / 1e6),
        "errors": sum(res["errors"].values()),
        "backend_cpu_us_per_req": cpu_s[backend.name] * 1e6 / n,
        "backend_rss_kb": backend.rss_kb(),
    }
    if cfg != "a":
        run["proxy_cpu_us_per_req"] = cpu_s[group.name] * 1e6 / n
        run["proxy_user_us_per_req"] = user_s[group.name] * 1e6 / n
        run["proxy_sys_us_per_req"] = sys_s[group.name] * 1e6 / n
        run["proxy_rss_kb"] = group.rss_kb()
    return run


# ---------------------------------------------------------- idle conns ---

MARGINAL_BATCHES = 3


def idle_memory(env, cfg, n, recheck, settle):
    """Open n idle clients, then three more batches of 3n/10 on top. The
    first batch gives RSS growth per connection (what the clients cost,
    transient buffers and upstream pool growth included); the later batches
    give the marginal cost of one more idle connection once those one-off
    costs are paid: their whole growth over their connections, each batch's
    own figure kept to show the spread (RSS grows in steps, so one batch
    alone can read low or high). The total stays under usher's default
    max_connections (10,000) for n = 5,000."""
    group = env["proxy"][cfg]
    port = env["ports"][cfg]
    headers = [env["cookie_headers"]["c"]] if cfg in ("c", "ct") else []
    tls = ["--tls"] if cfg.endswith("t") else []

    def open_batch(count):
        client = subprocess.Popen(
            ["taskset", "-c", CLIENT_CPU, sys.executable, str(HERE / "idle_clients.py")] + tls +
            ["127.0.0.1", str(port), "/data/100B", str(count)] + headers,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        clients.append(client)
        line = client.stdout.readline().split()
        if not line or line[0] != "ready":
            raise SystemExit(f"idle client for {cfg} failed: {line}")
        time.sleep(settle)  # let the server settle
        return client, int(line[1]), int(line[2])

    clients = []
    time.sleep(settle)
    rss0 = group.main_rss_kb()
    tcp0 = sockstat_tcp_mem()
    try:
        first, opened, failed = open_batch(n)
        rss1 = group.main_rss_kb()
        tcp1 = sockstat_tcp_mem()
        batch = max(n * 3 // 10, 1)
        marginals, opened_more, rss_prev = [], 0, rss1
        for _ in range(MARGINAL_BATCHES):
            _, got, lost = open_batch(batch)
            rss_now = group.main_rss_kb()
            marginals.append((rss_now - rss_prev) * 1024 / max(got, 1))
            opened_more += got
            failed += lost
            rss_prev = rss_now
        out = {
            "config": cfg, "clients": n, "opened": opened, "failed": failed,
            "rss_before_kb": rss0, "rss_after_kb": rss1, "rss_second_kb": rss_prev, "opened_second": opened_more,
            "bytes_per_conn": (rss1 - rss0) * 1024 / max(opened, 1),
            "marginal_batch": batch,
            "marginal_each": marginals,
            "marginal_bytes_per_conn": (rss_prev - rss1) * 1024 / max(opened_more, 1),
            "kernel_tcp_mem_pages_delta": tcp1 - tcp0,
        }
        if recheck:
            time.sleep(recheck)
            first.stdin.write("count\n")
            first.stdin.flush()
            out[f"still_open_after_{recheck}s"] = int(first.stdout.readline().split()[1])
        for client in clients:
            client.stdin.write("close\n")
            client.stdin.flush()
        for client in clients:
            client.wait(timeout=30)
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
    time.sleep(settle)
    return out


# --------------------------------------------------------------- report ---

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarise(runs, kept_rounds):
    rows = []
    for body in BODIES:
        for cfg in CONFIGS:
            sel = [r for r in runs if r["config"] == cfg and r["body"] == body and r["round"] in kept_rounds]
            ratios, to_c = [], []
            for rnd in kept_rounds:
                mine = [r for r in sel if r["round"] == rnd]
                base = [r for r in runs if r["config"] == "b" and r["body"] == body and r["round"] == rnd]
                cookie = [r for r in runs if r["config"] == "c" and r["body"] == body and r["round"] == rnd]
                if mine and base:
                    ratios.append(mine[0]["rps"] / base[0]["rps"])
                if mine and cookie:
                    to_c.append(mine[0]["rps"] / cookie[0]["rps"])
            rows.append({
                "config": cfg, "body": body,
                "rps": med([r["rps"] for r in sel]),
                "ratio_to_b": med(ratios),
                "ratio_min": min(ratios) if ratios else None,
                "ratio_max": max(ratios) if ratios else None,
                "ratio_to_c": med(to_c) if cfg in "efg" else None,
                "p50_ms": med([r["wrk"]["lat_p50_us"] / 1000 for r in sel]),
                "p99_ms": med([r["wrk"]["lat_p99_us"] / 1000 for r in sel]),
                "proxy_cpu_us": med([r.get("proxy_cpu_us_per_req") for r in sel]),
                "proxy_user_us": med([r.get("proxy_user_us_per_req") for r in sel]),
                "proxy_sys_us": med([r.get("proxy_sys_us_per_req") for r in sel]),
                "backend_cpu_us": med([r["backend_cpu_us_per_req"] for r in sel]),
                "proxy_rss_mib": med([r.get("proxy_rss_kb", 0) / 1024 for r in sel]) if cfg != "a" else None,
                "backend_rss_mib": med([r["backend_rss_kb"] / 1024 for r in sel]),
                "errors": sum(r["errors"] for r in sel),
            })
    return rows


def fmt(x, spec):
    return "–" if x is None else format(x, spec)


def proxy_cpu(r):
    if r["proxy_cpu_us"] is None:
        return "–"
    return f"{r['proxy_cpu_us']:.1f} ({r['proxy_user_us']:.1f}+{r['proxy_sys_us']:.1f})"


def markdown(result):
    m = result["meta"]
    out = [
        "# usher benchmark results",
        "",
        f"Run {m['finished']} on {m['host']}: {m['cpus']} CPUs ({m['cpu_model']}), kernel {m['kernel']}, "
        f"{m['nginx']}, {m['wrk']}, usher `{m['usher_bin']}` ({m['usher_build']}).",
        f"Mode: {m['mode']}; {m['rounds']} rounds × {m['duration_s']} s per run, wrk -t1 -c{m['connections']}; "
        f"servers on cpu{SERVER_CPU}, wrk on cpu{CLIENT_CPU}; usher with RUST_LOG=warn.",
        (f"Kept rounds: none was quiet, so all {m['rounds']} are reported "
         if set(m['kept_rounds']) & set(m['discarded_rounds'])
         else f"Kept rounds: {len(m['kept_rounds'])} of {m['rounds']} ")
        + f"(discarded: {', '.join(f'round {d}' for d in m['discarded_rounds']) or 'none'}; rule: background CPU > "
        f"{m['max_foreign_cores']} core"
        + (f" or CPU steal > {m['max_steal_cores']} core" if "max_steal_cores" in m else "")
        + " during a run or in the quiet second before it; before each run the harness waits up to "
        f"{m['max_wait_s']:.0f} s for the machine to go quiet).",
        "",
        "Medians over kept rounds. *ratio* is req/s ÷ (b)'s req/s in the same round, median of the rounds "
        "(min–max in brackets); *to (c)* the same against usher's cookie store. CPU is µs of CPU time per "
        "request (utime+stime from /proc, all threads); *proxy* is nginx (b), haproxy (h), usher (c, d, f, g) or usher and "
        "redis-server together (e); RSS at the end of the run.",
        "",
        "| config | body | req/s | ratio to (b) | to (c) | p50 ms | p99 ms | proxy CPU µs/req (user+sys) | backend CPU µs/req | proxy RSS MiB | backend RSS MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["summary"]:
        ratio = "–" if r["ratio_to_b"] is None else (
            f"{r['ratio_to_b']:.2f} ({r['ratio_min']:.2f}–{r['ratio_max']:.2f})")
        out.append(
            f"| ({r['config']}) {CONFIGS[r['config']]} | {r['body']} | {fmt(r['rps'], ',.0f')} | {ratio} | "
            f"{fmt(r.get('ratio_to_c'), '.2f')} | {fmt(r['p50_ms'], '.2f')} | {fmt(r['p99_ms'], '.2f')} | {proxy_cpu(r)} | "
            f"{fmt(r['backend_cpu_us'], '.1f')} | {fmt(r['proxy_rss_mib'], '.1f')} | {fmt(r['backend_rss_mib'], '.1f')} |")
    out += ["", "## Idle keep-alive connections", "",
            "Each server is restarted first, so the test starts from a fresh process. "
            "Each client connects, sends one request, reads the answer and stays open. "
            "*bytes / idle conn*: RSS growth of the process holding the connections (nginx: its worker) "
            "÷ connections opened, for the first batch; this includes one-off costs such as buffers of "
            "requests in flight while the clients connect (100 at a time) and upstream pool growth. "
            "*marginal*: the same for three further batches opened on top of the first, together, the cost "
            "of one more idle connection; in brackets the range of the three batches' own figures (RSS grows "
            "in steps, so one batch alone reads low or high). Kernel socket buffers are not in RSS. *still open later*: connections of the first "
            "batch the server had not closed that many seconds after their last request. "
            "*TLS* rows: the same servers terminating TLS 1.3 themselves (P-256 certificate, Python `ssl` "
            "clients), with fewer clients because each handshake costs the client CPU.", "",
            "| server | clients | opened | RSS before MiB | RSS after MiB | bytes / idle conn | "
            "RSS after further batches MiB | marginal bytes / idle conn | still open later |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for i in result["idle"]:
        later = next(((k, v) for k, v in i.items() if k.startswith("still_open_after_")), None)
        later_s = f"{later[1]} after {later[0].rsplit('_', 1)[1]}" if later else "–"
        second = i.get("rss_second_kb")
        marginal = fmt(i.get("marginal_bytes_per_conn"), ',.0f')
        each = i.get("marginal_each")
        if each:
            marginal += f" ({min(each):,.0f}–{max(each):,.0f}; {len(each)} × {i['marginal_batch']:,})"
        out.append(
            f"| ({i['config']}) {IDLE_LABELS[i['config']]} | {i['clients']} | {i['opened']} | "
            f"{i['rss_before_kb'] / 1024:.1f} | {i['rss_after_kb'] / 1024:.1f} | {i['bytes_per_conn']:,.0f} | "
            f"{fmt(second and second / 1024, '.1f')} | {marginal} | {later_s} |")
    out += ["", "## Rounds and background load", "",
            "| round | kept | load 1m/5m before first run | max quiet-second busy (cores) | max foreign CPU during runs (cores) | max steal (cores) | waited for quiet (s) |",
            "| ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for rnd in range(1, m["rounds"] + 1):
        rr = [r for r in result["runs"] if r["round"] == rnd]
        if not rr:
            continue
        qb = [r["quiet_busy_cores"] for r in rr if r["quiet_busy_cores"] is not None]
        out.append(
            f"| {rnd} | {'yes' if rnd in m['kept_rounds'] else 'no'} | "
            f"{rr[0]['load_before']['1m']:.2f} / {rr[0]['load_before']['5m']:.2f} | "
            f"{fmt(max(qb) if qb else None, '.3f')} | {max(r['foreign_cores'] for r in rr):.3f} | "
            f"{max(r['steal_cores'] for r in rr):.3f} | {sum(r['waited_for_quiet_s'] for r in rr):.0f} |")
    crit = result.get("criterion")
    if crit:
        out += ["", "## criterion micro-benchmarks", "", "| benchmark | median | 95% CI |", "| --- | ---: | --- |"]
        for c in crit:
            out.append(f"| {c['id']} | {c['median_ns'] / 1000:.3f} µs | "
                       f"{c['lo_ns'] / 1000:.3f}–{c['hi_ns'] / 1000:.3f} µs |")
    out.append("")
    return "\n".join(out)


def criterion_results(target_dir):
    out = []
    root = Path(target_dir) / "criterion"
    for est in sorted(root.glob("**/new/estimates.json")):
        meta = est.parent / "benchmark.json"
        if not meta.exists():
            continue
        bench_id = json.loads(meta.read_text())["full_id"]
        e = json.loads(est.read_text())["median"]
        out.append({"id": bench_id, "median_ns": e["point_estimate"],
                    "lo_ns": e["confidence_interval"]["lower_bound"],
                    "hi_ns": e["confidence_interval"]["upper_bound"]})
    return out


# ------------------------------------------------------------- helpers ---

def write_docroot(work, bodies=BODIES):
    """The backend's document root: the same fixed bodies under /data and /public."""
    docroot = work / "www"
    for d in ("data", "public"):
        (docroot / d).mkdir(parents=True)
        for name, size in bodies.items():
            (docroot / d / name).write_bytes(bytes((i * 7 + 13) % 94 + 33 for i in range(size)))
    os.chmod(docroot, 0o755)
    return docroot


def start_backend(work, port, bodies=BODIES):
    """The backend nginx on `port`, serving `write_docroot`'s bodies, up and answering."""
    backend = start_nginx("backend", work, BACKEND_SERVER.format(port=port, docroot=write_docroot(work, bodies)))
    wait_port(port, backend.proc, "backend nginx")
    return backend


def usher_build(path, smoke):
    """How the binary was built, as far as its path says (USHER_BIN may
    name a copy anywhere)."""
    if "/release/" in path:
        return "release"
    if "/debug/" in path:
        return "debug (smoke)" if smoke else "debug"
    return "given by USHER_BIN"


def session_cookie(usher_bin, config, env):
    """A cookie value for SESSION_JSON, made by `usher session encode` with `config`."""
    value = subprocess.run([usher_bin, "session", "encode", "-c", str(config), SESSION_JSON],
                           env=env, check=True, capture_output=True, text=True).stdout.strip()
    check(value.startswith("v1."), f"usher session encode printed {value!r}")
    return value


# ----------------------------------------------------------------- main ---

def start_servers(usher_bin, work, procs, connections):
    """Backend nginx, proxy nginx and usher, pinned to cpu0; returns the run environment."""
    ports = {"a": free_port(), "b": free_port(), "u": free_port(), "bt": free_port(), "ut": free_port(),
             "ur": free_port(), "redis": free_port(), "uf": free_port(), "ug": free_port(), "h": free_port()}
    cert, key = make_cert(work)
    proxy_server = PROXY_SERVER.format(port=ports["b"], backend=ports["a"], tls_port=ports["bt"], cert=cert, key=key)
    backend = start_backend(work, ports["a"])
    procs.append(backend)
    nginx_proxy = start_nginx("proxy", work, proxy_server)
    procs.append(nginx_proxy)
    wait_port(ports["b"], nginx_proxy.proc, "nginx proxy")
    haproxy = start_haproxy(work, ports["h"], ports["a"])
    procs.append(haproxy)
    wait_port(ports["h"], haproxy.proc, "haproxy")

    conf = usher_config(work, ports["u"], ports["a"])
    tls_conf = usher_config(work, ports["ut"], ports["a"], tls=(cert, key))
    redis_conf = usher_config(work, ports["ur"], ports["a"], redis=ports["redis"])
    redis = Group("redis", subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, "redis-server", "--port", str(ports["redis"]), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no"],
        stdout=open(work / "redis.log", "w"), stderr=subprocess.STDOUT))
    procs.append(redis)
    wait_port(ports["redis"], redis.proc, "redis-server")
    uenv = dict(os.environ, USHER_SECRET_KEYS="bench-" + os.urandom(24).hex(), RUST_LOG="warn")
    signing_key = work / "signing.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", str(signing_key)], check=True, capture_output=True)
    assertion_conf = usher_config(work, ports["uf"], ports["a"], name="usher-assertion", extra=f"""
[upstream.assertion]
key_file = "{signing_key}"
audience = "https://bench.test"
issuer = "https://bench.test"
""")
    api_key_out = subprocess.run([usher_bin, "gen-api-key"], check=True, capture_output=True, text=True).stdout
    api_key = api_key_out.splitlines()[0]
    api_table = api_key_out.split("\n", 2)[2].replace('name = ""', 'name = "bench"').replace(
        "groups = []", 'groups = ["a", "b"]')
    key_conf = usher_config(work, ports["ug"], ports["a"], name="usher-api-key", extra=api_table)
    cookies = {}
    for cfg, config in (("c", conf), ("e", redis_conf), ("f", assertion_conf)):
        cookies[cfg] = session_cookie(usher_bin, config, uenv)

    def start_usher(tls=False, store=False, which=None):
        name, config, port = (("usher-tls", tls_conf, ports["ut"]) if tls else
                              ("usher-redis", redis_conf, ports["ur"]) if store else
                              which if which else ("usher", conf, ports["u"]))
        usher = Group(name, subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, usher_bin, "run", "-c", str(config)], env=uenv,
            stdout=open(work / f"{name}.log", "a"), stderr=subprocess.STDOUT))
        wait_port(port, usher.proc, name)
        return usher

    def start_nginx_proxy():
        proxy = start_nginx("proxy", work, proxy_server)
        wait_port(ports["b"], proxy.proc, "nginx proxy")
        return proxy

    usher = start_usher()
    procs.append(usher)
    usher_redis = start_usher(store=True)
    usher_redis.with_ = [redis]
    procs.append(usher_redis)
    usher_assertion = start_usher(which=("usher-assertion", assertion_conf, ports["uf"]))
    procs.append(usher_assertion)
    usher_key = start_usher(which=("usher-api-key", key_conf, ports["ug"]))
    procs.append(usher_key)
    # Started now for the sanity check; restarted fresh for its idle test.
    usher_tls = start_usher(tls=True)
    procs.append(usher_tls)

    env = {
        "backend": backend,
        "proxy": {"a": backend, "b": nginx_proxy, "h": haproxy, "c": usher, "d": usher, "e": usher_redis,
                  "f": usher_assertion, "g": usher_key, "bt": nginx_proxy, "ct": usher_tls},
        "ports": {"a": ports["a"], "b": ports["b"], "h": ports["h"], "c": ports["u"], "d": ports["u"], "e": ports["ur"],
                  "f": ports["uf"], "g": ports["ug"], "bt": ports["bt"], "ct": ports["ut"]},
        "cookie_headers": dict({cfg: f"Cookie: {COOKIE_NAME}={value}" for cfg, value in cookies.items()},
                               g=f"Authorization: Bearer {api_key}"),
        "connections": connections,
        "starters": {"b": start_nginx_proxy, "c": start_usher, "bt": start_nginx_proxy,
                     "ct": lambda: start_usher(tls=True)},
        "procs": procs,
    }
    return env


def restart(env, cfg):
    """Replace the (b) or (c) server with a fresh process, so that the idle
    test starts from an allocator that has not served the load runs."""
    old = env["proxy"][cfg]
    old.proc.terminate()
    old.proc.wait(timeout=30)
    new = env["starters"][cfg]()
    env["procs"][env["procs"].index(old)] = new
    for key, group in list(env["proxy"].items()):
        if group is old:
            env["proxy"][key] = new


def check(cond, msg):
    if not cond:
        raise SystemExit(f"sanity check failed: {msg}")


def get(port, path, headers=None, tls=False):
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the bench's own self-signed certificate
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    res = conn.getresponse()
    body = res.read()
    conn.close()
    return res.status, body


def sanity(env):
    """Every configuration answers as it should before anything is timed."""
    cookies = {cfg: dict([h.split(": ", 1)]) for cfg, h in env["cookie_headers"].items()}
    cookie = cookies["c"]
    for body, size in BODIES.items():
        for cfg in "abhcefg":
            st, b = get(env["ports"][cfg], f"/data/{body}", cookies.get(cfg))
            check(st == 200 and len(b) == size, f"({cfg}) /data/{body}: {st}, {len(b)} bytes")
        st, b = get(env["ports"]["d"], f"/public/{body}")
        check(st == 200 and len(b) == size, f"(d) /public/{body}: {st}, {len(b)} bytes")
    st, _ = get(env["ports"]["c"], "/data/100B")
    check(st == 401, f"usher without a session answered {st}, expected 401")
    st, b = get(env["ports"]["c"], "/echo", cookie)
    check(st == 200 and b == b"bench|bench@example.com|a,b",
          f"usher did not inject the three session headers: {st} {b!r}")
    st, b = get(env["ports"]["e"], "/echo", cookies["e"])
    check(st == 200 and b == b"bench|bench@example.com|a,b",
          f"usher with the Redis store did not inject the three session headers: {st} {b!r}")
    check(get(env["ports"]["e"], "/data/100B", cookie)[0] == 401,
          "usher with the Redis store accepted a cookie-store session")
    st, b = get(env["ports"]["f"], "/assertion", cookies["f"])
    check(st == 200 and b.count(b".") == 2 and len(b) > 100, f"usher did not send the assertion: {st} {b!r}")
    st, b = get(env["ports"]["g"], "/echo", cookies["g"])
    check(st == 200 and b == b"bench||a,b", f"usher with an API key did not inject the session headers: {st} {b!r}")
    check(get(env["ports"]["g"], "/data/100B", {"Authorization": "Bearer usher_00000000_" + "A" * 43})[0] == 401,
          "usher accepted a wrong API key")
    for cfg in ("bt", "ct"):
        st, b = get(env["ports"][cfg], "/data/100B", cookie if cfg == "ct" else None, tls=True)
        check(st == 200 and len(b) == 100, f"({cfg}) over TLS /data/100B: {st}, {len(b)} bytes")
    log("sanity: all eight configurations answer, and both servers over TLS; usher refuses without a "
        "session and injects 3 headers")


def render(path, criterion_target):
    """Rewrite latest.md from latest.json (after editing the renderer, or to add criterion numbers)."""
    path = Path(path)
    result = json.loads(path.read_text())
    if criterion_target:
        result["criterion"] = criterion_results(criterion_target)
        path.write_text(json.dumps(result, indent=1) + "\n")
    path.with_suffix(".md").write_text(markdown(result))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--render", metavar="JSON", help="only rewrite the .md next to this latest.json")
    ap.add_argument("--usher", help="usher binary")
    ap.add_argument("--smoke", action="store_true", help="seconds-long run: proves the harness works")
    ap.add_argument("--rounds", type=int, default=5, help="quiet rounds wanted")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections")
    ap.add_argument("--idle", type=int, default=5000, help="idle keep-alive clients (0: skip)")
    ap.add_argument("--idle-tls", type=int, default=2000, help="idle keep-alive TLS clients (0: skip)")
    ap.add_argument("--idle-recheck", type=int, default=12,
                    help="seconds after which to count idle connections the server still keeps (0: skip)")
    ap.add_argument("--quiet", type=float, default=1.0, help="seconds of quiet sampling before each run")
    ap.add_argument("--max-foreign", type=float, default=DEFAULT_MAX_FOREIGN,
                    help="cores of background CPU above which a run is noisy")
    ap.add_argument("--max-steal", type=float, default=DEFAULT_MAX_STEAL,
                    help="cores of CPU steal (the VM's host running others) above which a run is noisy")
    ap.add_argument("--max-wait", type=float, default=120.0,
                    help="seconds to wait for a quiet machine before each run")
    ap.add_argument("--max-rounds", type=int, default=0,
                    help="give up after this many rounds (default: twice --rounds)")
    ap.add_argument("--out", help="directory for latest.md / latest.json")
    ap.add_argument("--criterion-target", help="cargo target dir whose criterion results to include")
    ap.add_argument("--keep-work", action="store_true", help="keep the temp dir (configs, logs)")
    args = ap.parse_args()
    if args.render:
        render(args.render, args.criterion_target)
        return
    if not args.usher or not args.out:
        ap.error("--usher and --out are required")
    if args.smoke:
        args.rounds, args.duration, args.quiet = 1, 1, 0.0
        args.idle, args.idle_tls, args.idle_recheck = min(args.idle, 200), min(args.idle_tls, 50), 0

    work = Path(tempfile.mkdtemp(prefix="usher-bench-"))
    os.chmod(work, 0o755)
    procs = []

    def cleanup(*_):
        for g in reversed(procs):
            if g.proc.poll() is None:
                g.proc.send_signal(signal.SIGTERM)
        for g in procs:
            try:
                g.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                g.proc.kill()
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        env = start_servers(args.usher, work, procs, args.connections)
        sanity(env)

        if not args.smoke and args.rounds > 0:
            log("warm-up: 2 s per configuration and body")
            for body in BODIES:
                for cfg in CONFIGS:
                    one_run(env, cfg, body, 2, 0)

        def noise(r):
            """Why run r is noisy, or None."""
            if r["foreign_cores"] > args.max_foreign or (
                    r["quiet_busy_cores"] is not None and r["quiet_busy_cores"] > args.max_foreign):
                return f"background CPU above {args.max_foreign} core"
            if r["steal_cores"] > args.max_steal or (
                    r["quiet_steal_cores"] is not None and r["quiet_steal_cores"] > args.max_steal):
                return f"CPU steal above {args.max_steal} core"
            return None

        runs, kept, discarded = [], [], []
        max_rounds = args.max_rounds or 2 * args.rounds
        rnd = 0
        while len(kept) < args.rounds and rnd < max_rounds:
            rnd += 1
            this = []
            for body in BODIES:
                for cfg in CONFIGS:
                    r = one_run(env, cfg, body, args.duration, args.quiet, args.max_foreign, args.max_wait,
                                args.max_steal)
                    r["round"] = rnd
                    this.append(r)
                    log(f"round {rnd} ({cfg}) {body}: {r['rps']:,.0f} req/s, p99 "
                        f"{r['wrk']['lat_p99_us'] / 1000:.2f} ms, proxy "
                        f"{r.get('proxy_cpu_us_per_req', 0):.1f} µs/req, backend "
                        f"{r['backend_cpu_us_per_req']:.1f} µs/req, foreign {r['foreign_cores']:.3f}, "
                        f"steal {r['steal_cores']:.3f}, "
                        f"load {r['load_before']['1m']:.2f}, waited {r['waited_for_quiet_s']:.0f} s")
                    if r["errors"] or r["wrk"]["requests"] == 0:
                        raise SystemExit(f"({cfg}) {body}: {r['errors']} errors, {r['wrk']['requests']} requests: "
                                         f"{r['wrk']['errors']}")
            runs += this
            reasons = sorted({why for why in map(noise, this) if why})
            if args.smoke or not reasons:
                kept.append(rnd)
            else:
                discarded.append(rnd)
                log(f"round {rnd} discarded: {'; '.join(reasons)}")
        if not kept:
            log("WARNING: every round was noisy; reporting all of them")
            kept = list(range(1, rnd + 1))

        idle = []
        idle_runs = [(cfg, args.idle) for cfg in ("b", "c") if args.idle]
        idle_runs += [(cfg, args.idle_tls) for cfg in ("bt", "ct") if args.idle_tls]
        for cfg, n in idle_runs:
            restart(env, cfg)
            log(f"idle: {n} keep-alive clients on a fresh ({cfg}) {IDLE_LABELS[cfg]}")
            idle.append(idle_memory(env, cfg, n, args.idle_recheck, 0.2 if args.smoke else 1.0))
            log(f"idle ({cfg}): {idle[-1]}")

        def version(cmd):
            p = subprocess.run(cmd, capture_output=True, text=True)
            return (p.stdout + p.stderr).strip().splitlines()[0]

        cpu_model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                          if ln.startswith("model name")), platform.processor())
        result = {
            "meta": {
                "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
                "cpu_model": cpu_model,
                "nginx": version(["nginx", "-v"]).replace("nginx version: ", ""),
                "wrk": version(["wrk", "-v"]).split(" [")[0],
                "usher_bin": os.path.basename(os.path.dirname(args.usher)) + "/" + os.path.basename(args.usher),
                "usher_build": usher_build(args.usher, args.smoke),
                "mode": "smoke" if args.smoke else "full",
                "rounds": rnd, "rounds_wanted": args.rounds, "duration_s": args.duration, "connections": args.connections,
                "max_foreign_cores": args.max_foreign, "max_steal_cores": args.max_steal,
                "max_wait_s": args.max_wait,
                "kept_rounds": kept, "discarded_rounds": discarded,
                "configs": CONFIGS,
            },
            "summary": summarise(runs, kept),
            "idle": idle,
            "runs": runs,
        }
        if args.criterion_target:
            result["criterion"] = criterion_results(args.criterion_target)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "latest.json").write_text(json.dumps(result, indent=1) + "\n")
        (out / "latest.md").write_text(markdown(result))
        log(f"report: {out / 'latest.md'}")
        print(markdown(result))
    finally:
        cleanup()


if __name__ == "__main__":
    main()
