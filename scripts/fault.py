#!/usr/bin/env python3
"""Fault injection: what clients see when Redis, PostgreSQL or an instance fails under
load. Run through scripts/fault.sh, which builds the binary. Everything here runs on
loopback against a PostgreSQL cluster and a redis-server this script starts on ports of
its own (never the machine's shared 5432/6379), and every loop is bounded in time.

Each case prints one line, `PASS` or `FAIL`, with what was measured; the exit status is
1 when any case failed.
"""

import asyncio
import concurrent.futures as cf
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import websockets

BIN = os.path.abspath(os.environ.get("BIN", "target/debug/marketplace"))
PASSWORD = "fault injection battery staple"
SHUTDOWN_TIMEOUT = 5
RESULTS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(name, ok, detail):
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


# --- private servers ----------------------------------------------------------------

def pg_tool(name):
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        (d for d in os.listdir("/usr/lib/postgresql") if d.isdigit()), key=int)
    return f"/usr/lib/postgresql/{versions[-1]}/bin/{name}"


def as_postgres(args):
    """PostgreSQL refuses to run as root: as root, its tools run as `postgres`."""
    return (["runuser", "-u", "postgres", "--"] + args) if os.geteuid() == 0 else args


class Postgres:
    def __init__(self, work):
        self.port = free_port()
        self.data = os.path.join(work, "pg")
        os.makedirs(self.data)
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        subprocess.run(as_postgres([pg_tool("initdb"), "-D", self.data, "-U", "postgres",
                                    "--auth=trust", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.data}'\nfsync = off\n"
                       "max_connections = 200\n")
        self.start()

    def ctl(self, *args):
        subprocess.run(as_postgres([pg_tool("pg_ctl"), "-D", self.data, "-l",
                                    os.path.join(self.data, "server.log"), *args]),
                       check=True, stdout=subprocess.DEVNULL)

    def start(self):
        self.ctl("-w", "start")

    def stop(self):
        self.ctl("-m", "fast", "-w", "stop")

    def sql(self, query):
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                              "-d", "marketplace", "-At", "-c", query],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/marketplace"


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        self.proc.kill()
        self.proc.wait()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


class Instance:
    def __init__(self, name, env, work):
        self.name, self.env, self.work = name, env, work
        self.port = free_port()
        self.proc = None

    @property
    def base(self):
        return ("127.0.0.1", self.port)

    def start(self):
        env = dict(self.env, BIND=f"127.0.0.1:{self.port}",
                   LOG_DIR=os.path.join(self.work, f"logs-{self.name}"))
        log = open(os.path.join(self.work, f"{self.name}.out"), "ab")
        self.proc = subprocess.Popen([BIN], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if request(self.base, "GET", "/health", timeout=1)[0] == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"instance {self.name} did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- HTTP and WebSocket clients -------------------------------------------------------

def request(base, method, path, body=None, token=None, headers=None, timeout=10, raw=None):
    """One request on a fresh connection: (status or "error:…", seconds, parsed JSON).
    `raw` is sent as the body as it is (with the caller's content-type)."""
    conn = http.client.HTTPConnection(*base, timeout=timeout)
    hdrs = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["content-type"] = "application/json"
    if token:
        hdrs["authorization"] = f"Bearer {token}"
    started = time.monotonic()
    try:
        conn.request(method, path, body=data, headers=hdrs)
        response = conn.getresponse()
        payload = response.read()
        status = response.status
    except OSError as err:
        status, payload = f"error:{type(err).__name__}", b""
    finally:
        conn.close()
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    return status, time.monotonic() - started, parsed


def login(base, email):
    status, _, body = request(base, "POST", "/api/v1/auth/login",
                              {"email": email, "password": PASSWORD})
    assert status == 200, (status, body)
    return body["access_token"]


def register(base, role):
    email = f"{role}-{uuid.uuid4().hex[:10]}@fault.example"
    status, _, body = request(base, "POST", "/api/v1/auth/register",
                              {"email": email, "password": PASSWORD, "full_name": "Fault",
                               "role": role})
    assert status == 201, (status, body)
    return email, login(base, email)


def me(base, token):
    return request(base, "GET", "/api/v1/auth/me", token=token)[2]["id"]


async def ws_connect(base, token):
    status, _, body = request(base, "POST", "/api/v1/ws/ticket", token=token)
    assert status in (200, 201), (status, body)
    return await websockets.connect(f"ws://{base[0]}:{base[1]}/api/v1/ws?ticket={body['ticket']}",
                                    open_timeout=5, close_timeout=2)


def statuses(results):
    counts = {}
    for status in results:
        counts[status] = counts.get(status, 0) + 1
    return counts


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

def case_redis(redis, a):
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
                          [(1.5, "stopped", redis.stop), (4.5, "restarted", redis.start)])
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


def case_postgres(pg, a, client_token, worker_id, service_id):
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
                          [(1.5, "restarted", restart)])
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


def case_sigkill(pg, a, b, client_token, worker_token, worker_id):
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


def case_sigterm(b, client_token):
    email, _ = register(b.base, "client")
    loop = asyncio.new_event_loop()
    sockets = [loop.run_until_complete(ws_connect(b.base, client_token)) for _ in range(3)]

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

        case_redis(redis, a)
        case_postgres(pg, a, client_token, service["worker_id"], service["id"])
        case_sigkill(pg, a, b, client_token, worker_token, service["worker_id"])
        a.start()
        case_sigterm(b, client_token)
    finally:
        teardown(instances, redis, pg, work)
    return 0 if RESULTS and all(RESULTS) else 1


def teardown(instances, redis, pg, work):
    """Stops what a script started (any of it may be None) and removes its folder."""
    for instance in instances:
        if instance:
            instance.stop()
    if redis:
        redis.stop()
    if pg:
        try:
            pg.ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
