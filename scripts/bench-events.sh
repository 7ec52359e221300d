#!/usr/bin/env bash
# Events and notifications benchmarks against release servers on this machine (not part
# of the tests):
#   1. commit-to-socket latency of a notification (`cargo bench --bench notify_load`):
#      COUNT chat messages sent over REST at RATE/s, open-loop; the worker's socket on the
#      same instance, then on a second one;
#   2. dispatcher throughput: EVENTS message_sent events inserted not yet due, made due
#      at once, timed until none is undone — with both instances' dispatchers, then one;
#   3. pgbench running the dispatcher's statements (the SKIP LOCKED claim, the
#      notification insert in a savepoint, the mark-done update; 100 events per
#      transaction) with 2 and 1 clients, the dispatchers' concurrency.
#
#   scripts/bench-events.sh
#   COUNT=500 RATE=100 EVENTS=20000 scripts/bench-events.sh
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-1000}
RATE=${RATE:-50}
PAIRS=${PAIRS:-20}
EVENTS=${EVENTS:-10000}
PORT=${PORT:-18092}
PORT2=${PORT2:-18093}
DB=marketplace_bench_events
BASE="http://127.0.0.1:$PORT"
BASE2="http://127.0.0.1:$PORT2"

scripts/services.sh >/dev/null
cargo build --release --quiet
cargo bench --no-run --quiet --bench notify_load 2>/dev/null

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export LOG_LEVEL=warn LOG_DIR="${TMPDIR:-/tmp}/marketplace-bench-events-logs" REDIS_KEY_PREFIX="benchev:"
export RATE_LIMIT_PER_SEC=100000000 RATE_LIMIT_BURST=100000000 RATE_LIMIT_LOGIN_PER_MIN=100000000
export WS_MAX_SOCKETS_PER_USER=100000 HTTP_MAX_CONNECTIONS_PER_IP=100000
work=$(mktemp -d)
export UPLOAD_DIR="$work/uploads"
q() { psql -q -h 127.0.0.1 -U postgres "$@"; }
q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
redis-cli --scan --pattern 'benchev:*' | xargs -r redis-cli del >/dev/null

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli --scan --pattern 'benchev:*' | xargs -r redis-cli del >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
start() { # port
  BIND="127.0.0.1:$1" ./target/release/marketplace >"$work/server-$1.log" 2>&1 &
  pids+=($!)
  local tries=0
  until curl -sf "http://127.0.0.1:$1/health" >/dev/null; do
    sleep 0.05; tries=$((tries + 1)); [ "$tries" -lt 600 ] || { cat "$work/server-$1.log"; exit 1; }
  done
}
start "$PORT"; pid1=${pids[0]}
start "$PORT2"; pid2=${pids[1]}
notify_load() { timeout 60 cargo bench --quiet --bench notify_load 2>/dev/null; }

echo "## commit-to-socket latency ($COUNT events at $RATE/s, $PAIRS pairs)"
echo
echo "| case | rate | sent | notified | dup | p50 ms | p99 ms | max ms |"
echo "|---|---|---|---|---|---|---|---|"
TAG=one BASE="$BASE" BASE2="$BASE" PAIRS="$PAIRS" COUNT="$COUNT" RATE="$RATE" notify_load
TAG=two BASE="$BASE" BASE2="$BASE2" PAIRS="$PAIRS" COUNT="$COUNT" RATE="$RATE" notify_load

# EVENTS copies of the message_sent events above, not due for a day.
seed() { # count
  q -d "$DB" -c "INSERT INTO events (id, kind, payload, next_attempt_at)
    SELECT gen_random_uuid(), e.kind, e.payload, now() + interval '1 day'
    FROM generate_series(1, $1) g
    JOIN (SELECT row_number() OVER () - 1 AS n, kind, payload FROM events WHERE kind = 'message_sent' LIMIT 500) e
      ON e.n = g % LEAST(500, (SELECT count(*) FROM events WHERE kind = 'message_sent'))" >/dev/null
}
undone() { q -d "$DB" -Atc "SELECT count(*) FROM events WHERE done_at IS NULL AND parked_at IS NULL"; }
dispatch() { # label → a table row: events made due at once, timed until none is undone
  seed "$EVENTS"
  q -d "$DB" -c "UPDATE events SET next_attempt_at = now() WHERE done_at IS NULL; SELECT pg_notify('marketplace_events', '')" >/dev/null
  local t0 t1 left
  t0=$(date +%s.%N)
  for _ in $(seq 600); do # at most ~60 s
    left=$(undone); [ "$left" -eq 0 ] && break; sleep 0.1
  done
  t1=$(date +%s.%N)
  awk -v l="$1" -v n="$EVENTS" -v a="$t0" -v b="$t1" -v left="$left" \
    'BEGIN { printf "| %s | %d | %d | %.1f | %.0f |\n", l, n, left, b - a, (n - left) / (b - a) }'
}
echo
echo "## dispatcher throughput ($EVENTS events made due at once)"
echo
echo "| dispatching | events | left undone | seconds | events/s |"
echo "|---|---|---|---|---|"
dispatch "2 instances' dispatchers"
kill "$pid2"; wait "$pid2" 2>/dev/null || true
dispatch "1 instance's dispatcher"
kill "$pid1"; wait "$pid1" 2>/dev/null || true
pids=()

# The dispatcher's statements (src/events/dispatcher.rs, src/notification/services.rs):
# the claim exactly as it runs (its ids gathered into an array, as pgbench cannot loop
# over rows), then per event a savepoint, the notification insert, the mark-done update.
# Differences: the payload is re-read by primary key per event (the dispatcher has it
# from the claim) and stripped of kind/recipients in SQL rather than in Rust.
{
  echo "BEGIN;"
  echo "SELECT array_agg(id)::text AS ids FROM (SELECT id, payload::text AS payload, attempts FROM events WHERE done_at IS NULL AND parked_at IS NULL AND next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT 100 FOR UPDATE SKIP LOCKED) c \\gset"
  for k in $(seq 100); do
    cat <<SQL
SELECT (SELECT payload::text FROM events WHERE id = (:ids::uuid[])[$k]) AS payload \\gset
SAVEPOINT handler;
INSERT INTO notifications (id, user_id, event_id, kind, payload) SELECT r.id, r.user_id, (:ids::uuid[])[$k], 'message_sent', (:payload::jsonb - 'kind' - 'recipients') FROM unnest(ARRAY(SELECT gen_random_uuid() FROM jsonb_array_elements_text(:payload::jsonb -> 'recipients')), ARRAY(SELECT x::uuid FROM jsonb_array_elements_text(:payload::jsonb -> 'recipients') x)) AS r(id, user_id) ON CONFLICT (event_id, user_id) DO NOTHING RETURNING id, user_id, kind, payload::text AS payload, read_at, created_at;
RELEASE SAVEPOINT handler;
UPDATE events SET done_at = now(), attempts = attempts + 1 WHERE id = (:ids::uuid[])[$k];
SQL
  done
  echo "COMMIT;"
} >"$work/dispatch.sql"
pgbench_dispatch() { # clients → a table row: EVENTS due events, 100 per transaction
  seed "$EVENTS"
  q -d "$DB" -c "UPDATE events SET next_attempt_at = now() WHERE done_at IS NULL" >/dev/null
  q -d "$DB" -c "VACUUM ANALYZE events" >/dev/null
  { timeout 40 pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$1" -j "$1" -t $((EVENTS / 100 / $1)) -f "$work/dispatch.sql" "$DB" 2>&1 || true; } | tee /dev/stderr \
    | awk -v c="$1" -v n="$EVENTS" '/^tps/ { printf "| pgbench, the dispatcher SQL, %d clients | %d | – | – | %.0f |\n", c, n, $3 * 100 }'
  q -d "$DB" -c "UPDATE events SET done_at = now() WHERE done_at IS NULL" >/dev/null
}
pgbench_dispatch 2
pgbench_dispatch 1
