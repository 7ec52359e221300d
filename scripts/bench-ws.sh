#!/usr/bin/env bash
# WebSocket benchmarks against release servers on this machine (not part of the tests):
#   1. server RSS per idle socket with SOCKETS sockets open;
#   2. a sweep of open-loop send rates (RATES) on one instance: ack and delivery
#      latency, lost and duplicate deliveries;
#   3. pgbench running the message-insert statement of src/messaging/services.rs::send at
#      the server's pool size (16), for the rate the server should be compared with;
#   4. HALF_RATE on one instance and across two instances (sender and receiver on
#      different servers, delivery through Redis pub/sub).
#
#   scripts/bench-ws.sh
#   SOCKETS=2000 RATES=200,400 HALF_RATE=200 scripts/bench-ws.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SOCKETS=${SOCKETS:-10000}
PAIRS=${PAIRS:-100}
SECONDS_PER_RATE=${SECONDS_PER_RATE:-8}
RATES=${RATES:-250,500,1000,1500}
HALF_RATE=${HALF_RATE:-500}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-10}
PORT=${PORT:-18090}
PORT2=${PORT2:-18091}
DB=marketplace_bench_ws
BASE="http://127.0.0.1:$PORT"
BASE2="http://127.0.0.1:$PORT2"

ulimit -n "$(ulimit -Hn)"
scripts/services.sh >/dev/null
cargo build --release --quiet
cargo bench --no-run --quiet --bench ws_load 2>/dev/null

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export LOG_LEVEL=warn LOG_DIR="${TMPDIR:-/tmp}/marketplace-bench-ws-logs" REDIS_KEY_PREFIX="benchws:"
export RATE_LIMIT_PER_SEC=100000000 RATE_LIMIT_BURST=100000000 RATE_LIMIT_LOGIN_PER_MIN=100000000
export WS_MAX_SOCKETS_PER_USER=100000 HTTP_MAX_CONNECTIONS_PER_IP=100000
work=$(mktemp -d)
export UPLOAD_DIR="$work/uploads"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
redis-cli --scan --pattern 'benchws:*' | xargs -r redis-cli del >/dev/null

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
start() { # port → pid
  BIND="127.0.0.1:$1" ./target/release/marketplace >"$work/server-$1.log" 2>&1 &
  pids+=($!)
  until curl -sf "http://127.0.0.1:$1/health" >/dev/null; do sleep 0.05; done
}
start "$PORT"; pid1=${pids[0]}
start "$PORT2"
ws_load() { timeout 300 cargo bench --quiet --bench ws_load 2>/dev/null; }

echo "## idle sockets (one instance)"
MODE=idle BASE="$BASE" SERVER_PID="$pid1" SOCKETS="$SOCKETS" USERS=100 ws_load
echo
echo "## send-rate sweep, one instance ($PAIRS pairs, ${SECONDS_PER_RATE}s per rate)"
MODE=load TAG=one BASE="$BASE" BASE2="$BASE" PAIRS="$PAIRS" SECONDS="$SECONDS_PER_RATE" RATES="$RATES" ws_load

psql -q -h 127.0.0.1 -U postgres -d "$DB" <<SQL
CREATE TABLE bench_pairs AS
  SELECT (row_number() OVER ()) - 1 AS n, id AS thread, client_id AS sender FROM threads WHERE job_id IS NULL;
CREATE UNIQUE INDEX ON bench_pairs (n);
SQL
pairs=$(psql -h 127.0.0.1 -U postgres -d "$DB" -Atc "SELECT count(*) FROM bench_pairs")
cat >"$work/insert.sql" <<SQL
\set n random(0, $pairs - 1)
WITH p AS (SELECT thread, sender FROM bench_pairs WHERE n = :n),
member AS (SELECT 1 FROM thread_participants tp JOIN p ON tp.thread_id = p.thread AND tp.user_id = p.sender),
inserted AS (INSERT INTO messages (id, thread_id, sender_id, body, client_msg_id)
  SELECT gen_random_uuid(), p.thread, p.sender, 'pgbench message', NULL FROM member, p
  ON CONFLICT (thread_id, sender_id, client_msg_id) DO NOTHING
  RETURNING id, thread_id, sender_id, body, client_msg_id, created_at),
touched AS (UPDATE thread_participants tp SET last_activity_at = GREATEST(tp.last_activity_at, i.created_at)
  FROM inserted i WHERE tp.thread_id = i.thread_id)
SELECT i.*, ARRAY(SELECT user_id FROM thread_participants WHERE thread_id = i.thread_id) AS participants FROM inserted i;
SQL
echo
echo "## pgbench, the message-insert statement, 16 clients, ${PGBENCH_SECONDS}s"
pgbench -h 127.0.0.1 -U postgres -n -M prepared -c 16 -j 2 -T "$PGBENCH_SECONDS" -f "$work/insert.sql" "$DB" 2>&1 \
  | awk '/^tps/ {print "pgbench_insert_tps=" $3} /latency average/ {print "pgbench_latency_avg_ms=" $4}'
psql -q -h 127.0.0.1 -U postgres -d "$DB" -c "DROP TABLE bench_pairs"

echo
echo "## half rate, one instance"
MODE=load TAG=half BASE="$BASE" BASE2="$BASE" PAIRS="$PAIRS" SECONDS="$SECONDS_PER_RATE" RATES="$HALF_RATE" ws_load
echo
echo "## half rate, two instances (clients on :$PORT, workers on :$PORT2)"
MODE=load TAG=two BASE="$BASE" BASE2="$BASE2" PAIRS="$PAIRS" SECONDS="$SECONDS_PER_RATE" RATES="$HALF_RATE" ws_load
echo
for pid in "${pids[@]}"; do
  printf 'server %s: VmHWM %s\n' "$pid" "$(awk '/^VmHWM/ {print $2, $3}' "/proc/$pid/status")"
done
