#!/usr/bin/env bash
# Does POST /auth/password/forgot take as long for an unknown email as for a real
# account? (It must: a difference would tell an attacker which emails have accounts.)
# Starts the release binary on a scratch database (dropped at the end), registers
# ACCOUNTS accounts, then sends SAMPLES requests for each kind, interleaved at random on
# one connection at a time so queueing does not blur them, and prints both latency
# distributions and their difference. Not part of the tests (no timed assertions there).
#
#   scripts/time-forgot.sh                 # 40 accounts, 2000 samples of each kind
set -euo pipefail
cd "$(dirname "$0")/.."

ACCOUNTS=${ACCOUNTS:-40}
SAMPLES=${SAMPLES:-2000}
PORT=${PORT:-18086}
DB=${DB:-marketplace_time_forgot}

scripts/services.sh >/dev/null
# BIN: an already built binary to time instead of building this checkout's release one.
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; BIN=target/release/marketplace; fi

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export BIND="127.0.0.1:$PORT" LOG_LEVEL=warn
work=$(mktemp -d)
export LOG_DIR="$work/logs" UPLOAD_DIR="$work/uploads" REDIS_KEY_PREFIX="timeforgot:"
# Limits lifted so every sample reaches the code under test; a limited request would be
# the same 429 for both kinds.
export RATE_LIMIT_PER_SEC=100000000 RATE_LIMIT_BURST=100000000 RATE_LIMIT_LOGIN_PER_MIN=100000000
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli --scan --pattern 'timeforgot:*' | xargs -r redis-cli del >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null

"$BIN" migrate >/dev/null
"$BIN" >"$work/server.log" 2>&1 & server_pid=$!
until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; do sleep 0.05; done
echo "load before: $(uptime)"

PORT=$PORT ACCOUNTS=$ACCOUNTS SAMPLES=$SAMPLES python3 - <<'PY'
import http.client, json, os, random, statistics, time

port, accounts, samples = (int(os.environ[k]) for k in ("PORT", "ACCOUNTS", "SAMPLES"))
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

def post(path, body):
    started = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status, (time.perf_counter() - started) * 1000

known = [f"known{n}@example.com" for n in range(accounts)]
for email in known:
    status, _ = post("/api/v1/auth/register", {"email": email, "password": "correct horse battery",
                                               "full_name": "Timing", "role": "client"})
    assert status == 201, status
kinds = ["known"] * samples + ["unknown"] * samples
random.shuffle(kinds)
times = {"known": [], "unknown": []}
for n, kind in enumerate(kinds):
    email = random.choice(known) if kind == "known" else f"nobody{n}@example.com"
    status, ms = post("/api/v1/auth/password/forgot", {"email": email})
    assert status == 202, status
    times[kind].append(ms)

def row(name, values):
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(len(values) * q))]
    return (f"| {name:<15} | {len(values):>6} | {statistics.mean(values):8.3f} | {pick(0.5):8.3f} "
            f"| {pick(0.9):8.3f} | {pick(0.99):8.3f} |")

print("| email           |  count | mean ms  |  p50 ms  |  p90 ms  |  p99 ms  |")
print("|-----------------|--------|----------|----------|----------|----------|")
print(row("has an account", times["known"]))
print(row("no account", times["unknown"]))
k, u = (statistics.median(times[x]) for x in ("known", "unknown"))
print(f"median difference (account - none): {k - u:+.3f} ms")
PY
