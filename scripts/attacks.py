"""The security review's slow-connection and search attacks as pressure that runs beside
something else: scripts/abuse.py puts it on a healthy instance, scripts/fault.py on an
instance whose Redis or PostgreSQL is down, whose sibling was just SIGKILLed, or which is
shutting down. (scripts/probe_security.py replays the review's larger versions by hand.)
Each part ends in one PASS/FAIL line with what it saw; every loop is bounded.
"""

import concurrent.futures as cf
import select
import socket
import threading
import time

from lab import PeakRss, report, request, statuses

# 1,000 words: far over the 12 words and 200 characters a search may have.
LONG_Q = "/api/v1/services?q=" + "%20OR%20".join(["plumbing"] * 1000)
# The widest search allowed: 12 words OR'd.
WIDEST_Q = "/api/v1/services?q=" + "%20OR%20".join(
    ["plumbing", "garden", "cleaning", "paint", "repair", "move", "lesson", "fix", "tile",
     "wall", "door", "roof"])
# Half a request line; a header line every 0.5 s; a body at 20 bytes/s (the floor is
# HTTP_MIN_BODY_RATE, 1,024 by default).
HALF_LINE = b"GET / HTTP/1.1\r\n"
LORIS = (b"GET /health HTTP/1.1\r\nHost: x\r\n", b"X-Slow: 1\r\n")
SLOW_BODY = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 1000\r\n\r\n{", b" " * 10)
TRICKLE_EVERY = 0.5


def trickle(base, head, piece, limit):
    """Sends `head`, then `piece` every 0.5 s until the server answers or hangs up:
    (the answer's status, "closed" or "reset"; seconds after `head`). At most `limit` s."""
    sock = socket.create_connection(base, timeout=5)
    try:
        sock.sendall(head)
        started = time.monotonic()
        while time.monotonic() - started < limit:
            if select.select([sock], [], [], TRICKLE_EVERY)[0]:
                try:
                    data = sock.recv(4096)
                except OSError:
                    return "reset", time.monotonic() - started
                if not data:
                    return "closed", time.monotonic() - started
                line = data.split(b"\r\n", 1)[0].split()
                return (int(line[1]) if len(line) > 1 and line[1].isdigit()
                        else f"garbage:{data[:20]!r}"), time.monotonic() - started
            try:
                sock.sendall(piece)
            except OSError:
                return "reset", time.monotonic() - started
        return "still open", time.monotonic() - started
    finally:
        sock.close()


def still_open(sock):
    """Whether the server has left `sock` open (nothing to read and no hang-up)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


class SlowConnections:
    """`idle` connections that send half a request line and nothing more, a slowloris
    (a header line every 0.5 s) and a body trickled at 20 bytes/s. The server must
    close each at its deadline (`header_timeout` for a head; a body gets the same
    grace, then must keep up HTTP_MIN_BODY_RATE) and answer /health meanwhile."""

    def __init__(self, instance, idle, header_timeout):
        self.instance, self.idle, self.header_timeout = instance, idle, header_timeout
        self.ended = {}

    def start(self):
        self.started = time.monotonic()
        self.memory = PeakRss(self.instance.proc.pid).start()
        self.socks, self.refused = [], None
        for _ in range(self.idle):
            try:
                sock = socket.create_connection(self.instance.base, timeout=2)
                sock.sendall(HALF_LINE)
                self.socks.append(sock)
            except OSError as err:
                self.refused = type(err).__name__
                break
        self.opened = time.monotonic()
        self.health = request(self.instance.base, "GET", "/health", timeout=10)[:2]
        limit = self.header_timeout + 5
        self.threads = [threading.Thread(target=self.run, args=(name, head, piece, limit))
                        for name, (head, piece) in [("loris", LORIS), ("body", SLOW_BODY)]]
        for thread in self.threads:
            thread.start()

    def run(self, name, head, piece, limit):
        try:
            self.ended[name] = trickle(self.instance.base, head, piece, limit)
        except OSError as err:
            self.ended[name] = f"error:{type(err).__name__}", 0.0

    def finish(self, label):
        # Every deadline has passed two seconds before the idle connections are looked at.
        time.sleep(max(0.0, self.opened + self.header_timeout + 2 - time.monotonic()))
        open_after = sum(1 for sock in self.socks if still_open(sock))
        for sock in self.socks:
            sock.close()
        for thread in self.threads:
            thread.join()
        self.memory.finish()
        grace = self.header_timeout + 1.5
        loris, body = self.ended["loris"], self.ended["body"]
        status, latency = self.health
        ok = (len(self.socks) == self.idle and status == 200 and latency < 1
              and open_after == 0 and loris[0] in ("closed", "reset", 408) and loris[1] <= grace
              and body[0] in ("closed", "reset", 408) and body[1] <= grace)
        report(f"slow connections {label}", ok,
               f"{len(self.socks)} of {self.idle} half request lines open"
               f"{f' (then {self.refused})' if self.refused else ''} in "
               f"{self.opened - self.started:.1f} s, /health meanwhile "
               f"{status} in {latency * 1000:.0f} ms, still open {self.header_timeout + 2} s "
               f"later: {open_after}; a header line every 0.5 s: {loris[0]} after "
               f"{loris[1]:.1f} s; a body at 20 B/s: {body[0]} after {body[1]:.1f} s "
               f"(HTTP_HEADER_TIMEOUT={self.header_timeout}); {self.memory}")


class SearchRounds:
    """Rounds of searches, from start() to finish(): 20 with a `q` of 8,000 bytes from
    20 addresses (refused before any SQL), 20 of the widest `q` allowed at once from one
    address (past SEARCH_MAX_PER_IP in flight: 429), and /health and /auth/me beside
    them, which must keep answering. With `degraded` (a dependency is down), searches
    and /auth/me may answer 503, fast; nothing may hang."""

    def __init__(self, instance, token, degraded):
        self.instance, self.token, self.degraded = instance, token, degraded
        self.stop = threading.Event()
        self.answers = {"long": [], "widest": [], "health": [], "me": []}
        self.rejected_per_round = []

    def start(self):
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        base = self.instance.base
        with cf.ThreadPoolExecutor(50) as pool:
            while not self.stop.is_set():
                round_ = {
                    "long": [pool.submit(request, base, "GET", LONG_Q, None, None,
                                         {"x-forwarded-for": f"198.18.0.{n}"}) for n in range(20)],
                    "widest": [pool.submit(request, base, "GET", WIDEST_Q, None, None,
                                           {"x-forwarded-for": "198.18.1.1"}) for _ in range(20)],
                    "health": [pool.submit(request, base, "GET", "/health") for _ in range(5)],
                    "me": [pool.submit(request, base, "GET", "/api/v1/auth/me", None, self.token)
                           for _ in range(5)],
                }
                for kind, futures in round_.items():
                    self.answers[kind] += [f.result()[:2] for f in futures]
                self.rejected_per_round.append(
                    sum(1 for f in round_["widest"] if f.result()[0] == 429))
                # A pause between rounds: pressure, not a benchmark of a 2-core machine.
                self.stop.wait(0.5)

    def finish(self, label):
        self.stop.set()
        self.thread.join()
        took = time.monotonic() - self.started
        counts = {kind: statuses(s for s, _ in answers) for kind, answers in self.answers.items()}
        slowest = {kind: max((lat for _, lat in answers), default=0)
                   for kind, answers in self.answers.items()}
        failing = {503} if self.degraded else set()
        ok = (len(self.rejected_per_round) > 0
              and set(counts["long"]) <= {400, 422}
              and set(counts["widest"]) <= {200, 429} | failing
              and sum(self.rejected_per_round) > 0
              and set(counts["health"]) == {200} and slowest["health"] < 2
              and set(counts["me"]) <= {200} | failing and slowest["me"] < 2)
        rounds = self.rejected_per_round
        report(f"search limits {label}", ok,
               f"{len(rounds)} rounds in {took:.1f} s; q of {len(LONG_Q)} bytes from 20 "
               f"addresses: {counts['long']}, slowest {slowest['long'] * 1000:.0f} ms; 20 widest "
               f"q at once from one address: {counts['widest']} (429 per round "
               f"{min(rounds, default=0)}-{max(rounds, default=0)}); /health "
               f"{counts['health']}, slowest {slowest['health'] * 1000:.0f} ms; /auth/me "
               f"{counts['me']}, slowest {slowest['me'] * 1000:.0f} ms")


class Pressure:
    """Slow connections and, unless the instance is about to stop, search rounds against
    `instance`, from start() (in the middle of whatever else is going on) to finish(),
    which reports one line for each."""

    def __init__(self, instance, token, idle, header_timeout, search=True, degraded=False):
        self.slow = SlowConnections(instance, idle, header_timeout)
        self.search = SearchRounds(instance, token, degraded) if search else None

    def start(self):
        """Returns at once: opening the idle connections takes a while on a busy machine,
        and the fault it accompanies should not wait for it."""
        self.opening = threading.Thread(target=self.open)
        self.opening.start()

    def open(self):
        # The idle connections first: their connects are a flood of their own.
        self.slow.start()
        if self.search:
            self.search.start()

    def wait_open(self):
        self.opening.join()

    def finish(self, label):
        self.wait_open()
        self.slow.finish(label)
        if self.search:
            self.search.finish(label)
