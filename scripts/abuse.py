#!/usr/bin/env python3
"""Abuse: what one hostile client can do to a running instance, each case one PASS/FAIL
line with what was measured (statuses, RSS before/after, files left). Run through
scripts/abuse.sh. The instance runs on loopback against a private PostgreSQL cluster and
redis-server started here (scripts/lab.py); every loop is bounded.
"""

import asyncio
import concurrent.futures as cf
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from attacks import Pressure
from lab import (BIN, PASSWORD, RESULTS, Instance, PeakRss, Postgres, Redis, register, report,
                 request, statuses, teardown)

HEADER_TIMEOUT = 3
IDLE_CONNECTIONS = 1000
MAX_SOCKETS = 5


def files_under(path):
    return sorted(os.path.relpath(os.path.join(root, f), path)
                  for root, _, files in os.walk(path) for f in files)


def chunked_upload(base, path, token, preamble, content_type, total):
    """Streams `total` bytes as a chunked body after `preamble`; stops when the server
    answers or closes. Returns (status, bytes sent, seconds)."""
    sock = socket.create_connection(base, timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    sock.sendall(head + f"{len(preamble):x}\r\n".encode() + preamble + b"\r\n")
    chunk = b"\0" * (256 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent, started = 0, time.monotonic()
    answered = False
    while sent < total and time.monotonic() - started < 60:
        if select.select([sock], [], [], 0)[0]:
            answered = True
            break
        try:
            sock.sendall(framed)
        except OSError:
            break
        sent += len(chunk)
    if sent >= total and not answered:
        try:
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass
    try:
        sock.settimeout(10)
        line = sock.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        status = int(line.split()[1]) if line.startswith("HTTP/") else f"closed:{line!r}"
    except OSError as err:
        status = f"error:{type(err).__name__}"
    sock.close()
    return status, sent, time.monotonic() - started


def case_big_upload(server, upload_dir):
    _, token = register(server.base, "worker")
    before_files = files_under(upload_dir)
    boundary = uuid.uuid4().hex
    preamble = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"document_type\"\r\n\r\n"
                f"passport\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"d.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n").encode()
    with PeakRss(server.proc.pid) as memory:
        kyc = chunked_upload(server.base, "/api/v1/workers/me/kyc", token, preamble,
                             f"multipart/form-data; boundary={boundary}", 1 << 30)
        json_body = chunked_upload(server.base, "/api/v1/auth/login", token, b"{\"email\":\"",
                                   "application/json", 1 << 30)
    time.sleep(0.5)
    left = sorted(set(files_under(upload_dir)) - set(before_files))
    grown = memory.peak - memory.before
    ok = kyc[0] == 413 and json_body[0] == 413 and not left and grown < 64 * 1024 * 1024
    report("1 GiB chunked uploads", ok,
           f"KYC multipart: {kyc[0]} after {kyc[1] / 1048576:.0f} MiB sent in {kyc[2]:.1f} s; "
           f"JSON to /auth/login: {json_body[0]} after {json_body[1] / 1048576:.0f} MiB; "
           f"{memory}; files left in UPLOAD_DIR: {left or 'none'}")


def case_deep_json(server):
    body = b"[" * 30000 + b"]" * 30000
    answers = {}
    for path in ["/api/v1/auth/login", "/api/v1/auth/register"]:
        answers[path] = request(server.base, "POST", path, body=None,
                                headers={"content-type": "application/json"},
                                raw=body)[0]
    alive = request(server.base, "GET", "/health")[0]
    ok = all(s in (400, 422) for s in answers.values()) and alive == 200 \
        and server.proc.poll() is None
    report("JSON nested 30,000 arrays deep (60 KB)", ok,
           f"statuses {answers}; /health afterwards {alive}; process "
           f"{'alive' if server.proc.poll() is None else 'DEAD'}")


def case_many_sockets(server):
    _, token = register(server.base, "client")

    async def handshake():
        try:
            reader, writer = await asyncio.open_connection(*server.base)
            writer.write((f"GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                          f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          f"Authorization: Bearer {token}\r\n\r\n").encode())
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 10)
            status = int(line.split()[1]) if line.startswith(b"HTTP/") else "closed"
        except (OSError, asyncio.TimeoutError) as err:
            return f"error:{type(err).__name__}", None
        if status == 101:
            return status, writer
        writer.close()
        return status, None

    async def run():
        limit = asyncio.Semaphore(100)

        async def one():
            async with limit:
                return await handshake()
        results = await asyncio.gather(*(one() for _ in range(10_000)))
        for _, writer in results:
            if writer:
                writer.close()
        return [status for status, _ in results]

    started = time.monotonic()
    with PeakRss(server.proc.pid) as memory:
        answers = statuses(asyncio.run(run()))
    took = time.monotonic() - started
    ok = answers.get(101) == MAX_SOCKETS and answers.get(409) == 10_000 - MAX_SOCKETS
    report("10,000 WebSocket handshakes from one user", ok,
           f"statuses {answers} in {took:.1f} s (WS_MAX_SOCKETS_PER_USER={MAX_SOCKETS}); {memory}")


def case_many_addresses(server):
    def flood(offset):
        import http.client
        conn = http.client.HTTPConnection(*server.base, timeout=10)
        seen = {}
        for n in range(offset, offset + 5000):
            conn.request("GET", "/api/v1/services?limit=1",
                         headers={"x-forwarded-for": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"})
            response = conn.getresponse()
            response.read()
            seen[response.status] = seen.get(response.status, 0) + 1
        conn.close()
        return seen

    with PeakRss(server.proc.pid) as memory:
        with cf.ThreadPoolExecutor(4) as pool:
            parts = list(pool.map(flood, range(0, 20_000, 5000)))
    answers = {}
    for part in parts:
        for status, n in part.items():
            answers[status] = answers.get(status, 0) + n
    grown = memory.peak - memory.before
    ok = answers.get(200) == 20_000 and grown < 64 * 1024 * 1024
    report("20,000 distinct client addresses through TRUSTED_PROXIES", ok,
           f"statuses {answers}; {memory} (a million keys: the limiter's unit test "
           "a_million_client_addresses_are_forgotten_once_idle)")


def case_security_review(server):
    """The security review's slow connections and searches, on an instance whose
    dependencies are healthy (scripts/fault.py runs the same beside each fault)."""
    _, token = register(server.base, "client")
    pressure = Pressure(server, token, IDLE_CONNECTIONS, HEADER_TIMEOUT)
    pressure.start()
    pressure.finish("on a healthy instance")


def main():
    work = tempfile.mkdtemp(prefix="mp-abuse-")
    os.chmod(work, 0o755)
    pg = redis = server = None
    upload_dir = os.path.join(work, "uploads")
    try:
        pg = Postgres(work)
        redis = Redis()
        env = dict(os.environ, DATABASE_URL=pg.url, REDIS_URL=redis.url, LOG_LEVEL="warn",
                   UPLOAD_DIR=upload_dir, LOG_DIR=os.path.join(work, "logs"),
                   REDIS_KEY_PREFIX="abuse:", TRUSTED_PROXIES="127.0.0.1",
                   RATE_LIMIT_PER_SEC="100000", RATE_LIMIT_BURST="100000",
                   RATE_LIMIT_LOGIN_PER_MIN="100000", HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                   WS_MAX_SOCKETS_PER_USER=str(MAX_SOCKETS), UPLOAD_MIN_FREE_BYTES="1",
                   JWT_SECRET="abuse-test-secret-0123456789abcdefghij")
        subprocess.run([BIN, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([BIN, "seed", "--workers", "5", "--services", "200", "--clients", "1",
                        "--password", PASSWORD], env=env, check=True, stdout=subprocess.DEVNULL)
        server = Instance("abuse", env, work)
        server.start()
        case_deep_json(server)
        case_big_upload(server, upload_dir)
        case_many_sockets(server)
        case_many_addresses(server)
        case_security_review(server)
    finally:
        teardown([server], redis, pg, work)
    return 0 if RESULTS and all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
