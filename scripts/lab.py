"""What the fault and abuse scripts (scripts/fault.py, scripts/abuse.py) share: private
PostgreSQL and Redis servers on ports of their own, instances of the service, HTTP and
WebSocket clients, one PASS/FAIL line per case, and a process's RSS. Every wait here is
bounded.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid

import websockets

BIN = os.path.abspath(os.environ.get("BIN", "target/debug/marketplace"))
PASSWORD = "fault injection battery staple"
RESULTS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(name, ok, detail):
    """Prints a case's line; the script's exit status is 1 when any case failed."""
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


# --- memory ----------------------------------------------------------------------------

def rss(pid):
    """Resident bytes of `pid`; None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return None


class PeakRss:
    """Samples a process's RSS every 20 ms while in the `with` block (until it exits)."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def __enter__(self):
        return self.start()

    def start(self):
        self.before = rss(self.pid)
        self.thread = threading.Thread(target=self.sample)
        self.thread.start()
        return self

    def sample(self):
        while not self.stop.is_set():
            now = rss(self.pid)
            if now is None:
                return
            self.peak = max(self.peak, now)
            time.sleep(0.02)

    def __exit__(self, *_):
        self.finish()

    def finish(self):
        self.stop.set()
        self.thread.join()
        self.after = rss(self.pid)

    def __str__(self):
        mib = 1024 * 1024
        after = "exited" if self.after is None else f"{self.after / mib:.0f}"
        return f"RSS {self.before / mib:.0f} MiB before, peak {self.peak / mib:.0f}, after {after}"
