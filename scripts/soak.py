#!/usr/bin/env python3
"""Soak usher: run a mix of traffic and faults for N minutes against the
release binary in front of a real nginx, and report errors, RSS over time
and lost requests. Not part of CI (see scripts/soak.sh).

The mix, every loop bounded in count and time:
  - keep-alive GETs from several threads (must all be 200),
  - client aborts before the response head (connect, send, close),
  - slow uploads that take longer than upstream.timeout (must be 200),
  - a SIGHUP reload every 20 s (no request may fail because of it).
Every request sent is compared with usher_requests_total at the end: the
difference is what usher lost track of.
"""

import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def start_nginx(work, port):
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            f"daemon off;\nmaster_process off;\npid {work}/nginx.pid;\nerror_log {work}/nginx-error.log;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;\n"
            f"  fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;\n"
            f"  client_max_body_size 0;\n"
            f"  server {{ listen 127.0.0.1:{port}; keepalive_requests 100000;\n"
            "    location / { return 200 'ok'; }\n"
            "    location /upload { client_body_buffer_size 1k; return 200 'uploaded'; }\n"
            "  }\n}\n"
        )
    nginx = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx"
    proc = subprocess.Popen([nginx, "-p", work, "-c", conf, "-e", f"{work}/nginx-error.log"])
    wait_port(port)
    return proc


def start_usher(work, binary, port, admin, backend):
    key = os.path.join(work, "keys")
    with open(key, "w") as f:
        f.write("soak-key-0123456789abcdef0123456789abcdef\n")
    conf = os.path.join(work, "usher.toml")
    with open(conf, "w") as f:
        f.write(
            f'[server]\nlisten = "127.0.0.1:{port}"\n[admin]\nlisten = "127.0.0.1:{admin}"\n'
            f'[upstream]\nurl = "http://127.0.0.1:{backend}"\ntimeout = "2s"\n'
            f'[session]\nsecret_keys_file = "{key}"\nsecure = false\n'
            '[access]\ndefault = "anyone"\n'
        )
    log = open(os.path.join(work, "usher.log"), "w")
    proc = subprocess.Popen([binary, "run", "-c", conf], stderr=log, stdout=log)
    wait_port(port)
    wait_port(admin)
    return proc


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def requests_total(admin):
    conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    by = {}
    for line in text.splitlines():
        if line.startswith("usher_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            by[labels[len("usher_requests_total") :]] = int(float(value))
    return by


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n


def getter(port, until, tally):
    conn = None
    while time.time() < until:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/x")
            res = conn.getresponse()
            res.read()
            tally.add(f"get {res.status}")
        except Exception as e:  # noqa: BLE001 - every failure is counted
            tally.add(f"get error {type(e).__name__}")
            conn = None


def aborter(port, until, tally):
    while time.time() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /abort HTTP/1.1\r\nHost: soak\r\n\r\n")
            tally.add("abort sent")
        except OSError:
            tally.add("abort error")
        time.sleep(0.05)


def uploader(port, until, tally):
    while time.time() < until:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.putrequest("POST", "/upload")
            conn.putheader("Content-Length", "6")
            conn.endheaders()
            for _ in range(6):  # 6 x 0.5 s: longer than upstream.timeout (2 s)
                conn.send(b"x")
                time.sleep(0.5)
            res = conn.getresponse()
            res.read()
            tally.add(f"upload {res.status}")
            conn.close()
        except Exception as e:  # noqa: BLE001
            tally.add(f"upload error {type(e).__name__}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/usher"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="usher-soak-")
    backend, port, admin = free_port(), free_port(), free_port()
    nginx = start_nginx(work, backend)
    usher = start_usher(work, args.binary, port, admin, backend)
    tally = Tally()
    started = time.time()
    until = started + args.minutes * 60
    threads = [threading.Thread(target=getter, args=(port, until, tally)) for _ in range(args.threads)]
    threads.append(threading.Thread(target=aborter, args=(port, until, tally)))
    threads.append(threading.Thread(target=uploader, args=(port, until, tally)))
    for t in threads:
        t.start()
    samples = []
    next_reload = started + 20
    while time.time() < until:
        time.sleep(min(10, max(0.1, until - time.time())))
        samples.append((round(time.time() - started), rss_kib(usher.pid)))
        if time.time() >= next_reload:
            usher.send_signal(signal.SIGHUP)
            tally.add("reloads")
            next_reload += 20
    for t in threads:
        t.join()
    time.sleep(1)
    counted = requests_total(admin)
    usher.send_signal(signal.SIGTERM)
    usher.wait(timeout=60)
    nginx.terminate()
    nginx.wait(timeout=10)
    sent = sum(n for k, n in tally.counts.items() if k.startswith(("get", "abort sent", "upload")))
    total = sum(counted.values())
    errors = {k: n for k, n in tally.counts.items() if "error" in k or k.split()[-1] not in ("200", "sent", "reloads")}
    print(f"soak: {args.minutes} min, {args.threads} GET threads, work dir {work}")
    for k in sorted(tally.counts):
        print(f"  sent  {k:24} {tally.counts[k]}")
    for k in sorted(counted):
        if counted[k]:
            print(f"  usher {k:54} {counted[k]}")
    print(f"  requests sent {sent}, counted by usher {total}, lost {sent - total}")
    print(f"  errors: {errors if errors else 'none'}")
    rss = [r for _, r in samples]
    print(f"  RSS KiB: first {rss[0]}, min {min(rss)}, max {max(rss)}, last {rss[-1]}")
    print("  RSS over time (s: KiB): " + ", ".join(f"{t}: {r}" for t, r in samples))
    return 1 if errors or sent != total else 0


if __name__ == "__main__":
    sys.exit(main())
