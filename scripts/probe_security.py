#!/usr/bin/env python3
"""Replays the attacks of the security review against a running server and prints what
each got (statuses, latencies, bytes on disk). Run through scripts/probe-security.sh,
which starts a scratch server; every loop here is bounded in count and time.

    BASE=http://127.0.0.1:18081 UPLOAD_DIR=... python3 scripts/probe_security.py
"""

import base64
import concurrent.futures as cf
import hashlib
import hmac
import json
import os
import socket
import statistics
import time
import uuid

import lab

BASE = os.environ.get("BASE", "http://127.0.0.1:18081")
HOST, PORT = BASE.removeprefix("http://").split(":")
PORT = int(PORT)
UPLOAD_DIR = os.environ.get("UPLOAD_DIR", "uploads")
PASSWORD = "probe password battery"


def request(method, path, body=None, token=None, headers=None, timeout=60):
    """lab.request (shared with the fault and abuse scripts) against BASE; `body` as bytes
    is sent as it is (multipart uploads)."""
    raw = body if isinstance(body, bytes) else None
    return lab.request((HOST, PORT), method, path, None if raw else body, token, headers,
                       timeout, raw)


def summary(results):
    statuses = {}
    for status, _, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    latencies = sorted(r[1] * 1000 for r in results)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return f"statuses {statuses}, p50 {p50:.0f} ms, p99 {p99:.0f} ms"


def user(email, role):
    request("POST", "/api/v1/auth/register",
            {"email": email, "password": PASSWORD, "full_name": "Probe", "role": role})
    status, _, body = request("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert status == 200, (status, body)
    return body["access_token"]


def probe_search():
    words = " OR ".join(["plumbing", "garden", "cleaning", "paint", "repair", "move"] * 170)
    q = "/api/v1/services?q=" + words.replace(" ", "%20")
    allowed = "/api/v1/services?q=" + "%20OR%20".join(
        ["plumbing", "garden", "cleaning", "paint", "repair", "move", "lesson", "fix", "tile",
         "wall", "door", "roof"])
    token = user(f"search-{uuid.uuid4().hex[:8]}@example.com", "client")
    with cf.ThreadPoolExecutor(40) as pool:
        # Each from an address of its own (through the trusted proxy), as a botnet would.
        floods = [pool.submit(request, "GET", q, None, None, {"x-forwarded-for": f"198.18.0.{n}"})
                  for n in range(20)]
        heavy = [pool.submit(request, "GET", allowed, None, None, {"x-forwarded-for": f"198.18.1.{n}"})
                 for n in range(20)]
        time.sleep(0.2)
        others = [pool.submit(request, "GET", path, None, token)
                  for path in ["/api/v1/auth/me", "/ready"] * 10]
        print(f"1. 20 x q of {len(words)} bytes (1,020 words): {summary([f.result() for f in floods])}")
        print(f"   20 x the largest q allowed (12 words OR'd), 20 addresses: {summary([f.result() for f in heavy])}")
        same = [pool.submit(request, "GET", allowed) for _ in range(10)]
        print(f"   10 x the same from one address: {summary([f.result() for f in same])}")
        print(f"   /auth/me and /ready meanwhile: {summary([f.result() for f in others])}")


def probe_forged_admin():
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    now = int(time.time())
    claims = {"iss": "marketplace", "aud": "marketplace-api", "sub": str(uuid.uuid4()),
              "role": "admin", "sid": str(uuid.uuid4()), "jti": str(uuid.uuid4()),
              "iat": now, "nbf": now, "exp": now + 600}
    signing = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    key = b"dev-only-secret-change-me-0123456789abcdef"
    token = signing + "." + b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())
    status, _, _ = request("GET", "/api/v1/admin/kyc", token=token)
    print(f"2. admin token signed with the key once in the source: {status}")


def probe_lockout():
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    user(email, "client")
    attacker = {"x-forwarded-for": "203.0.113.66"}
    results = [request("POST", "/api/v1/auth/login", {"email": email, "password": "wrong guess"},
                       headers=attacker) for _ in range(12)]
    status, _, _ = request("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD},
                           headers={"x-forwarded-for": "198.51.100.7"})
    print(f"4. 12 wrong logins from one IP: {summary(results)}; the owner from another IP: {status}")


def disk_bytes():
    total = 0
    for root, _, files in os.walk(UPLOAD_DIR):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def upload(token, data):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"document_type\"\r\n\r\npassport\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return request("POST", "/api/v1/workers/me/kyc", body, token,
                   {"content-type": f"multipart/form-data; boundary={boundary}"})


def probe_uploads():
    data = b"%PDF-1.7\n" + bytes(10 * 1024 * 1024 - 9)
    before = disk_bytes()
    results = []
    for n in range(5):
        token = user(f"kyc-{n}-{uuid.uuid4().hex[:8]}@example.com", "worker")
        results += [upload(token, data) for _ in range(6)]
    grown = (disk_bytes() - before) / 1024 / 1024
    print(f"5. 5 fresh workers x 6 uploads of 10 MiB from one IP: {summary(results)}; disk +{grown:.0f} MiB "
          "(a refused upload is answered before its body is read: the client sees a broken pipe)")


def probe_slow_clients():
    socks = []
    for _ in range(2000):
        try:
            s = socket.create_connection((HOST, PORT), timeout=2)
            s.sendall(b"GET / HTTP/1.1\r\n")
            socks.append(s)
        except OSError:
            break
    status, latency, _ = request("GET", "/health", timeout=10)
    time.sleep(12)
    open_after = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) != b"":
                open_after += 1
        except BlockingIOError:
            open_after += 1
        except OSError:
            pass
        s.close()
    print(f"6. {len(socks)} connections sending half a request line: /health meanwhile {status} "
          f"in {latency * 1000:.0f} ms; still open after 12 s: {open_after}")
    loris = socket.create_connection((HOST, PORT), timeout=30)
    loris.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    alive = True
    while alive and time.monotonic() - started < 40:
        time.sleep(5)
        try:
            loris.sendall(b"X-Slow: 1\r\n")
            loris.setblocking(False)
            alive = loris.recv(1) != b""
        except BlockingIOError:
            pass
        except OSError:
            alive = False
        loris.setblocking(True)
    print(f"   a header line every 5 s: connection {'still open' if alive else 'closed'} "
          f"after {time.monotonic() - started:.0f} s")


def probe_logins():
    def attempt(n):
        # 300 addresses and accounts, so only the hashing queue can push back.
        return request("POST", "/api/v1/auth/login",
                       {"email": f"nobody{n}@example.com", "password": "wrong password here"},
                       headers={"x-forwarded-for": f"198.19.{n // 250}.{n % 250}"})
    with cf.ThreadPoolExecutor(300) as pool:
        results = list(pool.map(attempt, range(300)))
    print(f"7. 300 concurrent logins from 300 addresses: {summary(results)}")


def probe_nul():
    status, _, _ = request("GET", "/api/v1/services?q=a%00b")
    reg, _, _ = request("POST", "/api/v1/auth/register",
                        {"email": "n\u0000@example.com", "password": PASSWORD, "full_name": "x", "role": "client"})
    weak, _, _ = request("POST", "/api/v1/auth/register",
                         {"email": "weak@example.com", "password": "password", "full_name": "x", "role": "client"})
    metrics, _, _ = request("GET", "/metrics")
    _, _, _ = request("GET", "/health")
    print(f"7. NUL in q: {status}; NUL in email: {reg}; password 'password': {weak}; /metrics without token: {metrics}")


if __name__ == "__main__":
    probe_forged_admin()
    probe_search()
    probe_lockout()
    probe_uploads()
    probe_nul()
    probe_logins()
    probe_slow_clients()
