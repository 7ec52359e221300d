#!/usr/bin/env python3
"""Fault injection: what clients see when Redis, PostgreSQL or an instance fails under
load. Run through scripts/fault.sh, which builds the binary. Everything here runs on
loopback against a PostgreSQL cluster and a redis-server this script starts on ports of
its own (never the machine's shared 5432/6379), and every loop is bounded in time.

While each fault runs, the security review's slow-connection and search attacks
(scripts/attacks.py) run against the instance that should still be serving: its limits
must hold whatever the dependencies are doing.

Each case prints one line, `PASS` or `FAIL`, with what was measured; the exit status is
1 when any case failed.
"""

import asyncio
import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import websockets

from attacks import Pressure
from lab import (BIN, PASSWORD, RESULTS, Instance, Postgres, Redis, login, register, report,
                 request, statuses, teardown, ws_connect)

SHUTDOWN_TIMEOUT = 5
HEADER_TIMEOUT = 3
# Half request lines held open beside each fault (scripts/abuse.py holds 1,000 on a
# healthy instance).
IDLE_CONNECTIONS = 200


def load(base, calls, seconds, events, workers=6):
    """Runs `calls` (functions returning a status) round-robin from `workers` threads for
    `seconds`, while `events` [(at_seconds, name, action)] run on this thread; returns
    [(started, kind, status, latency)] and, per event, when its action began
    (`name:begin`) and ended (`name`), all in seconds from the start."""
    t0 = time.monotonic()
    stop = threading.Event()
    out = []
    lock = threading.Lock()

    def worker(n):
        i = n
        while not stop.is_set():
            kind, call = calls[i % len(calls)]
            i += 1
            started = time.monotonic() - t0
            status, latency = call()
            with lock:
                out.append((started, kind, status, latency))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    marks = {}
    for at, name, action in events:
        time.sleep(max(0, at - (time.monotonic() - t0)))
        marks[name + ":begin"] = time.monotonic() - t0
        action()
        marks[name] = time.monotonic() - t0
    time.sleep(max(0, seconds - (time.monotonic() - t0)))
    stop.set()
    for t in threads:
        t.join()
    return sorted(out), marks


def recovery(results, kind, since):
    """Seconds after `since` until `kind` answered 2xx and never failed again."""
    last_bad = since
    for started, k, status, latency in results:
        if k == kind and started >= since and not (isinstance(status, int) and status < 300):
            last_bad = max(last_bad, started + latency)
    good_after = [s + lat for s, k, st, lat in results
                  if k == kind and s >= last_bad and isinstance(st, int) and st < 300]
    return (min(good_after) - since) if good_after else None


# --- cases ----------------------------------------------------------------------------

def case_redis(redis, a, pressure):
    _, token = register(a.base, "client")
    _, revoked = register(a.base, "client")
    request(a.base, "POST", "/api/v1/auth/logout", token=revoked)
    assert request(a.base, "GET", "/api/v1/auth/me", token=revoked)[0] == 401
    socket_token = register(a.base, "client")[1]
    loop = asyncio.new_event_loop()
    ws = loop.run_until_complete(ws_connect(a.base, socket_token))

    def me_ok():
        return request(a.base, "GET", "/api/v1/auth/me", token=token)[:2]

    def me_revoked():
        return request(a.base, "GET", "/api/v1/auth/me", token=revoked)[:2]

    results, marks = load(a.base, [("valid", me_ok), ("revoked", me_revoked)], 10,
                          [(1.5, "stopped", redis.stop), (1.5, "pressure", pressure.start),
                           (4.5, "restarted", redis.start)])
    outage = [r for r in results if marks["stopped"] <= r[0] < marks["restarted"]]
    slowest = max((r[3] for r in outage), default=0)
    revoked_passed = sum(1 for r in results if r[1] == "revoked" and r[2] == 200)
    recovered = recovery(results, "valid", marks["restarted"])

    async def socket_state():
        try:
            await ws.send(json.dumps({"type": "ping"}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 3))
                if frame.get("type") == "pong":
                    return "still working (pong)"
        except websockets.ConnectionClosed as closed:
            return f"closed cleanly with {closed.rcvd.code if closed.rcvd else 'no frame'}"
        except asyncio.TimeoutError:
            return "silent"
    sock = loop.run_until_complete(socket_state())
    loop.run_until_complete(ws.close())
    loop.close()
    ok = (revoked_passed == 0 and slowest <= 2.0 and recovered is not None and recovered <= 5.0
          and sock != "silent")
    report("redis stopped under load, restarted empty", ok,
           f"revoked token passed {revoked_passed}x; during the outage statuses "
           f"{statuses(r[2] for r in outage)}, slowest answer {slowest:.2f} s; "
           f"recovered {recovered if recovered is None else round(recovered, 2)} s after the "
           f"restart; revoked after restart: "
           f"{statuses(r[2] for r in results if r[1] == 'revoked' and r[0] > marks['restarted'])}; "
           f"open socket: {sock}")
    pressure.finish("while Redis is stopped and restarted empty")


def case_postgres(pg, a, client_token, worker_id, service_id, pressure):
    status, _, thread = request(a.base, "POST", "/api/v1/threads", {"worker_id": worker_id},
                                token=client_token)
    assert status in (200, 201), (status, thread)
    thread_id = thread["id"]
    acked_messages, tried_messages, acked_jobs = set(), [], set()
    lock = threading.Lock()
    day = [0]

    def send():
        cid = uuid.uuid4().hex
        with lock:
            tried_messages.append(cid)
        status, latency, body = request(a.base, "POST", f"/api/v1/threads/{thread_id}/messages",
                                        {"body": f"m {cid}", "client_msg_id": cid},
                                        token=client_token)
        if status in (200, 201):
            with lock:
                acked_messages.add(cid)
        return status, latency

    def book():
        with lock:
            day[0] += 1
            n = day[0]
        when = time.strftime("%Y-%m-%dT10:00:00Z", time.gmtime(time.time() + 86400 * (30 + n)))
        status, latency, body = request(a.base, "POST", "/api/v1/jobs",
                                        {"service_id": service_id, "scheduled_at": when,
                                         "address": "1 Fault Street", "notes": "fault"},
                                        token=client_token,
                                        headers={"idempotency-key": uuid.uuid4().hex})
        if status == 201:
            with lock:
                acked_jobs.add(body["id"])
        return status, latency

    def restart():
        pg.stop()
        time.sleep(1)
        pg.start()

    results, marks = load(a.base, [("message", send), ("booking", book)], 9,
                          [(1.5, "pressure", pressure.start), (1.5, "restarted", restart)])
    outage = [r for r in results if marks["restarted:begin"] <= r[0] < marks["restarted"]]
    failed = [r for r in outage if r[2] != 201 and r[2] != 200]
    slowest = max((r[3] for r in failed), default=0)
    recovered = max(recovery(results, "message", marks["restarted"]) or 99,
                    recovery(results, "booking", marks["restarted"]) or 99)
    booking_statuses = statuses(r[2] for r in results if r[1] == "booking")
    # Retrying every unacknowledged message with its client_msg_id must not duplicate.
    for cid in set(tried_messages) - acked_messages:
        request(a.base, "POST", f"/api/v1/threads/{thread_id}/messages",
                {"body": f"m {cid}", "client_msg_id": cid}, token=client_token)
    stored = pg.sql(f"SELECT client_msg_id FROM messages WHERE thread_id = '{thread_id}'").split()
    missing = len(acked_messages - set(stored))
    duplicated = len(stored) - len(set(stored))
    half = int(pg.sql(
        "SELECT count(*) FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM threads t "
        "WHERE t.id = j.thread_id AND t.job_id = j.id) OR NOT EXISTS (SELECT 1 FROM job_events e "
        "WHERE e.job_id = j.id AND e.from_status IS NULL)"))
    orphans = int(pg.sql("SELECT count(*) FROM threads t WHERE t.job_id IS NOT NULL AND NOT "
                         "EXISTS (SELECT 1 FROM jobs j WHERE j.id = t.job_id)"))
    lost_jobs = len(acked_jobs) - int(pg.sql(
        "SELECT count(*) FROM jobs WHERE id IN ('" + "','".join(acked_jobs or {str(uuid.uuid4())})
        + "')"))
    ok = (slowest <= 2.0 and recovered <= 5.0 and missing == 0 and duplicated == 0 and half == 0
          and orphans == 0 and lost_jobs == 0 and len(acked_jobs) > 0)
    report("postgresql restarted under load", ok,
           f"outage {marks['restarted'] - marks['restarted:begin']:.1f} s: failed statuses "
           f"{statuses(r[2] for r in failed)}, slowest failure {slowest:.2f} s; recovered "
           f"{recovered:.2f} s after the restart; {len(acked_messages)} messages acked, "
           f"{missing} missing, {duplicated} stored twice (after retrying every unacked one); "
           f"bookings {booking_statuses}, {lost_jobs} acked but lost, {half} half-written, "
           f"{orphans} orphan threads")
    pressure.finish("while PostgreSQL restarts")


async def chat(base_of, token, thread_id, tag, deadline, kill_at, survivor, log):
    """Sends messages over a socket until `deadline`; on a broken socket reconnects to
    `survivor`, resends the unacknowledged ones (same client_msg_id), re-syncs history."""
    acked, pending, seen, errors = set(), {}, set(), []
    base = base_of
    reconnect_s = None
    n = 0
    while time.monotonic() < deadline:
        try:
            ws = await ws_connect(base, token)
        except Exception:  # the instance may be dying: try the survivor
            base = survivor
            await asyncio.sleep(0.05)
            continue
        if reconnect_s is None and base == survivor and base_of != survivor:
            reconnect_s = time.monotonic() - kill_at[0]
        try:
            for cid in list(pending):
                await ws.send(json.dumps({"type": "send", "thread_id": thread_id,
                                          "body": pending[cid], "client_msg_id": cid}))
            next_send = 0
            while time.monotonic() < deadline:
                now = time.monotonic()
                if now >= next_send:
                    n += 1
                    cid = f"{tag}-{n}"
                    pending[cid] = f"{tag} says {n}"
                    await ws.send(json.dumps({"type": "send", "thread_id": thread_id,
                                              "body": pending[cid], "client_msg_id": cid}))
                    # 14 frames/s: under the per-socket frame limit (20/s).
                    next_send = now + 0.07
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 0.03))
                except asyncio.TimeoutError:
                    continue
                if frame.get("type") == "ack":
                    acked.add(frame["client_msg_id"])
                    pending.pop(frame["client_msg_id"], None)
                elif frame.get("type") == "message":
                    seen.add(frame["message"].get("client_msg_id"))
                elif frame.get("type") == "error":
                    errors.append(frame.get("code"))
            # Stop sending; wait (briefly) for the acks of what is still in flight.
            drain_until = time.monotonic() + 3
            while pending and time.monotonic() < drain_until:
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except asyncio.TimeoutError:
                    continue
                if frame.get("type") == "ack":
                    acked.add(frame["client_msg_id"])
                    pending.pop(frame["client_msg_id"], None)
            await ws.close()
            break
        except websockets.ConnectionClosed:
            base = survivor
    # Re-sync: whatever was pushed while disconnected is in the history.
    status, _, page = request(survivor, "GET", f"/api/v1/threads/{thread_id}/messages?limit=50",
                              token=token)
    history = set()
    before = None
    while status == 200 and page.get("items"):
        history |= {m["client_msg_id"] for m in page["items"]}
        if not page.get("next_cursor") and len(page["items"]) < 50:
            break
        before = page["items"][-1]["id"]
        status, _, page = request(survivor, "GET",
                                  f"/api/v1/threads/{thread_id}/messages?limit=50&before={before}",
                                  token=token)
    log[tag] = {"acked": acked, "pending": pending, "seen": seen, "history": history,
                "reconnect_s": reconnect_s, "errors": errors}


def case_sigkill(pg, a, b, client_token, worker_token, worker_id, pressure):
    status, _, thread = request(b.base, "POST", "/api/v1/threads", {"worker_id": worker_id},
                                token=client_token)
    thread_id = thread["id"]
    log, kill_at = {}, [0.0]

    async def run():
        deadline = time.monotonic() + 6
        tasks = [asyncio.create_task(chat(a.base, client_token, thread_id, "client", deadline,
                                          kill_at, b.base, log)),
                 asyncio.create_task(chat(b.base, worker_token, thread_id, "worker", deadline,
                                          kill_at, b.base, log))]
        await asyncio.sleep(2)
        kill_at[0] = time.monotonic()
        a.proc.send_signal(signal.SIGKILL)
        # On the survivor, which the clients are reconnecting to.
        pressure.start()
        await asyncio.gather(*tasks)

    asyncio.run(run())
    rows = pg.sql(f"SELECT client_msg_id FROM messages WHERE thread_id = '{thread_id}'").split()
    acked = log["client"]["acked"] | log["worker"]["acked"]
    missing = len(acked - set(rows))
    duplicated = len(rows) - len(set(rows))
    unresolved = len(log["client"]["pending"]) + len(log["worker"]["pending"])
    # Each side, after re-sync, has every message the other side got acked.
    unseen = len(log["client"]["acked"] - log["worker"]["history"]) + \
        len(log["worker"]["acked"] - log["client"]["history"])
    reconnect = log["client"]["reconnect_s"]
    ok = (missing == 0 and duplicated == 0 and unseen == 0 and unresolved == 0
          and reconnect is not None and len(log["client"]["acked"]) > 0)
    report("one of two instances SIGKILLed during chat", ok,
           f"{len(acked)} messages acked ({len(log['client']['acked'])} via the killed instance "
           f"and its survivor), {missing} missing, {duplicated} stored twice, {unresolved} "
           f"never acked at the end (error frames: "
           f"{statuses(log['client']['errors'] + log['worker']['errors'])}), {unseen} not in "
           f"the other side's re-synced history; the "
           f"client reconnected to the survivor "
           f"{reconnect if reconnect is None else round(reconnect, 2)} s after the kill")
    pressure.finish("on the survivor of a SIGKILL")


def case_sigterm(b, client_token, pressure):
    email, _ = register(b.base, "client")
    loop = asyncio.new_event_loop()
    sockets = [loop.run_until_complete(ws_connect(b.base, client_token)) for _ in range(3)]
    # Slow connections in their head and body phases when the signal comes: shutdown
    # must not wait on them past their deadlines.
    pressure.start()
    pressure.wait_open()

    def attempt(_):
        return request(b.base, "POST", "/api/v1/auth/login",
                       {"email": email, "password": PASSWORD}, timeout=20)[0]

    with cf.ThreadPoolExecutor(24) as pool:
        futures = [pool.submit(attempt, n) for n in range(24)]
        time.sleep(0.15)
        signalled = time.monotonic()
        b.proc.send_signal(signal.SIGTERM)
        answers = statuses(f.result() for f in futures)

    async def close_code(ws):
        try:
            while True:
                await asyncio.wait_for(ws.recv(), SHUTDOWN_TIMEOUT + 2)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except asyncio.TimeoutError:
            return "open"
    codes = [loop.run_until_complete(close_code(ws)) for ws in sockets]
    loop.close()
    try:
        code = b.proc.wait(timeout=SHUTDOWN_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        code = "still running"
    took = time.monotonic() - signalled
    ok = (answers == {200: 24} and codes == [1001] * 3 and code == 0
          and took <= SHUTDOWN_TIMEOUT + 0.5)
    report("SIGTERM during load", ok,
           f"24 in-flight logins answered {answers}; socket close codes {codes}; "
           f"exit status {code} {took:.2f} s after the signal (SHUTDOWN_TIMEOUT={SHUTDOWN_TIMEOUT})")
    pressure.finish("while shutting down on SIGTERM")


def main():
    work = tempfile.mkdtemp(prefix="mp-fault-")
    os.chmod(work, 0o755)
    pg = redis = None
    instances = []
    try:
        pg = Postgres(work)
        redis = Redis()
        env = dict(os.environ, DATABASE_URL=pg.url, REDIS_URL=redis.url, LOG_LEVEL="warn",
                   UPLOAD_DIR=os.path.join(work, "uploads"), LOG_DIR=os.path.join(work, "logs"),
                   REDIS_KEY_PREFIX="fault:",
                   RATE_LIMIT_PER_SEC="100000", RATE_LIMIT_BURST="100000",
                   RATE_LIMIT_LOGIN_PER_MIN="100000", DB_POOL_TIMEOUT="1",
                   # Loopback is the proxy the attacks' X-Forwarded-For addresses come
                   # through (and so exempt from the per-address connection cap).
                   TRUSTED_PROXIES="127.0.0.1", HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                   SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT), WS_MAX_SOCKETS_PER_USER="10",
                   JWT_SECRET="fault-injection-secret-0123456789abcdef")
        subprocess.run([BIN, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([BIN, "seed", "--workers", "2", "--services", "2", "--clients", "1",
                        "--password", PASSWORD], env=env, check=True, stdout=subprocess.DEVNULL)
        a, b = Instance("a", env, work), Instance("b", env, work)
        instances = [a, b]
        a.start()
        b.start()
        status, _, page = request(a.base, "GET", "/api/v1/services?limit=1")
        service = page["items"][0]
        worker_email = pg.sql(f"SELECT email FROM users WHERE id = '{service['worker_id']}'")
        client_email = pg.sql("SELECT email FROM users WHERE email LIKE 'client0.%'")
        client_token = login(a.base, client_email)
        worker_token = login(a.base, worker_email)
        # No availability slots: any future time can be booked.
        pg.sql("DELETE FROM availability_slots")

        # Whose /auth/me the attacks check: a user of its own, not the cases' clients.
        watcher = register(a.base, "client")[1]

        def pressure(instance, **kwargs):
            return Pressure(instance, watcher, IDLE_CONNECTIONS, HEADER_TIMEOUT, **kwargs)

        case_redis(redis, a, pressure(a, degraded=True))
        case_postgres(pg, a, client_token, service["worker_id"], service["id"],
                      pressure(a, degraded=True))
        case_sigkill(pg, a, b, client_token, worker_token, service["worker_id"], pressure(b))
        a.start()
        case_sigterm(b, client_token, pressure(b, search=False))
    finally:
        teardown(instances, redis, pg, work)
    return 0 if RESULTS and all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
