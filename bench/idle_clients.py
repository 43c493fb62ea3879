#!/usr/bin/env python3
"""Open N keep-alive client connections, one request each, then hold them idle.

Usage: idle_clients.py [--tls] HOST PORT PATH N [HEADER ...]

--tls: connect with TLS (ALPN http/1.1), trusting any certificate: the
bench's servers use a self-signed one made for the run.

Each connection sends one HTTP/1.1 GET (with the extra headers, e.g.
"Cookie: usher_session=..."), reads the whole response (Content-Length
bodies only) and keeps the socket open without sending anything else.
Protocol on stdin/stdout, one line each:
  -> "ready OPEN FAILED"  once every connection has been tried
  <- "count"              -> "open OPEN"  (connections the server has not closed)
  <- "close" or EOF       close everything and exit
Python 3.11 standard library only.
"""

import asyncio
import resource
import ssl
import sys

CONNECT_CONCURRENCY = 100  # stay well under the listen backlogs


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def one(host, port, request, sem, conns, tls):
    async with sem:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"200":
            raise RuntimeError(f"status {status!r}")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        await reader.readexactly(length)
    state = {"open": True}
    conns.append((writer, state))
    # Wait for the server to close (EOF) or the client to be told to stop.
    try:
        data = await reader.read(1)
        if not data:
            state["open"] = False
    except (ConnectionError, asyncio.CancelledError):
        state["open"] = False


async def main():
    args = sys.argv[1:]
    tls = None
    if args and args[0] == "--tls":
        tls, args = tls_context(), args[1:]
    host, port, path, n = args[0], int(args[1]), args[2], int(args[3])
    extra = "".join(f"{h}\r\n" for h in args[4:])
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
    conns = []
    tasks = [asyncio.create_task(one(host, port, request, sem, conns, tls)) for _ in range(n)]
    # Wait until every task has either finished its request (and is now
    # waiting idle) or failed.
    failed = 0
    while True:
        done = [t for t in tasks if t.done()]
        failed = sum(1 for t in done if t.exception() is not None)
        if len(conns) + failed >= n:
            break
        await asyncio.sleep(0.05)
    for t in tasks:
        if t.done() and t.exception() is not None:
            print(f"error {t.exception()!r}", file=sys.stderr)
            break
    print(f"ready {len(conns)} {failed}", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        cmd = line.strip()
        if cmd == "count":
            await asyncio.sleep(0)
            print(f"open {sum(1 for _, s in conns if s['open'])}", flush=True)
        else:
            break
    for t in tasks:
        t.cancel()
    for writer, _ in conns:
        writer.close()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
