#!/usr/bin/env bash
# Load benchmarks against the release binary on this machine; prints a table of
# requests/s, p50/p99 latency and server memory. Not part of the test suite.
#
#   scripts/bench.sh            # all benchmarks, 10 s each
#   DURATION=30 ROUNDS=5 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
# GET /services/{id} and pgbench alternate this many times; the median round is reported.
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18080}
BASE="http://127.0.0.1:$PORT"
DB=marketplace_bench

scripts/services.sh >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export BIND="127.0.0.1:$PORT" LOG_LEVEL=warn LOG_DIR="${TMPDIR:-/tmp}/marketplace-bench-logs"
work=$(mktemp -d)
export UPLOAD_DIR="$work/uploads" REDIS_KEY_PREFIX="bench:" RATE_LIMIT_PER_SEC=100000000 RATE_LIMIT_BURST=100000000
# The server keeps its default pool (DB_POOL_SIZE, 16 connections) under 32 HTTP
# connections; pgbench needs one backend per client.
export RATE_LIMIT_LOGIN_PER_MIN=100000000
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
redis-cli --scan --pattern 'bench:*' | xargs -r redis-cli del >/dev/null

server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

now_ms() { date +%s%3N; }
wait_healthy() { until curl -sf "$BASE/health" >/dev/null; do sleep 0.01; done; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status"; }

# First start creates and migrates the database; the measured start has migrations applied.
./target/release/marketplace >"$work/first.log" 2>&1 & server_pid=$!
wait_healthy; kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
t0=$(now_ms)
./target/release/marketplace >"$work/server.log" 2>&1 & server_pid=$!
wait_healthy
startup_ms=$(( $(now_ms) - t0 ))
sleep 1
idle_rss=$(rss_kib)

# RSS while a 10 MiB document streams in: it goes to disk chunk by chunk.
upload_rss() {
  curl -sf -X POST "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
    -d '{"email":"uploader@example.com","password":"bench horse battery","full_name":"Up","role":"worker"}' >/dev/null
  local wtoken before after
  wtoken=$(curl -sf -X POST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"uploader@example.com","password":"bench horse battery"}' | json access_token)
  { printf '%%PDF-1.7\n'; head -c $((10 * 1024 * 1024 - 9)) /dev/zero; } >"$work/ten.pdf"
  before=$(rss_kib)
  curl -sf -o /dev/null -H "Authorization: Bearer $wtoken" -F document_type=passport -F "file=@$work/ten.pdf" "$BASE/api/v1/workers/me/kyc"
  after=$(hwm_kib)
  echo $(( (after - before) / 1024 ))
}

json() { python3 -c "import sys,json; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
upload_delta_mib=$(upload_rss)
psql_bench() { psql -q -h 127.0.0.1 -U postgres -d "$DB" "$@"; }

# 100k listings from 2000 KYC-approved workers (the seed command prints its own timing).
./target/release/marketplace seed --workers 2000 --services 100000 --clients 1000 | grep seeded
service_id=$(psql_bench -Atc "SELECT id FROM services ORDER BY id LIMIT 1 OFFSET 50000")

# The SQL the server runs for each endpoint, for pgbench (kept in step with src/service/search.rs).
COLS="s.id, s.worker_id, s.title, s.description, s.category, s.price_cents, s.pricing_unit, s.city, s.duration_minutes, s.status, s.rating_avg, s.rating_count, s.created_at, s.updated_at, s.location_lat, s.location_lng"
cat >"$work/by_id.sql" <<SQL
SELECT $COLS FROM services s WHERE s.id = '$service_id' AND (s.listed OR s.worker_id = '00000000-0000-0000-0000-000000000000' OR false);
SQL
# Without RUM the server ranks like this; with it, see scripts/bench-search.sh.
cat >"$work/search.sql" <<SQL
SELECT $COLS, ts_rank(s.search, query) AS rank FROM services s, websearch_to_tsquery('english', 'plumbing') query WHERE s.search @@ query AND s.listed ORDER BY rank DESC, s.id DESC LIMIT 21;
SQL
curl -sf -X POST "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench horse battery","full_name":"Bench","role":"client"}' >/dev/null
token=$(curl -sf -X POST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench horse battery"}' | json access_token)

cat >"$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"bench horse battery"}'
LUA


argon=$(BENCH_SECONDS=$DURATION cargo bench --quiet --bench argon2_raw 2>/dev/null | awk -F'[= ]' '/argon2id_hashes_per_sec/ {print $2}')

echo
bench_header
bench_row health 32 "$BASE/health"
bench_row auth_me 32 -H "Authorization: Bearer $token" "$BASE/api/v1/auth/me"
bench_row login 4 -s "$work/login.lua" "$BASE/api/v1/auth/login"
# The server and pgbench alternate, so the machine's drift (about ±10 % between runs
# of either alone on this shared 2-core box) lands on both; the median round is shown.
for i in $(seq "$ROUNDS"); do
  bench_row service_by_id 32 "$BASE/api/v1/services/$service_id" >"$work/round$i.rows"
  pgbench_row pgbench_service_by_id 32 "$work/by_id.sql" >>"$work/round$i.rows"
  awk -v a="$(cat "$work/service_by_id.rps")" -v b="$(cat "$work/pgbench_service_by_id.rps")" -v i="$i" \
    'BEGIN {printf "%.1f %d %s %s\n", 100*a/b, i, a, b}' >>"$work/by_id.ratios"
done
read -r _ median by_id_rps pg_rps < <(sort -n "$work/by_id.ratios" | sed -n "$(( (ROUNDS + 1) / 2 ))p")
cat "$work/round$median.rows"
echo "$by_id_rps" >"$work/service_by_id.rps"
echo "$pg_rps" >"$work/pgbench_service_by_id.rps"
bench_row search_plumbing 32 "$BASE/api/v1/services?q=plumbing"
pgbench_row pgbench_search_plumbing 32 "$work/search.sql"

# The booking lifecycle (book, accept, start, complete) with 16 concurrent clients,
# against pgbench's TPC-B-like default run at the same concurrency, in the same run.
printf 'bench admin horse battery\n' | ./target/release/marketplace create-admin --email bench-admin@example.com --password-stdin >/dev/null
flow=$(BASE="$BASE" ADMIN_EMAIL=bench-admin@example.com ADMIN_PASSWORD='bench admin horse battery' \
  BENCH_SECONDS=$DURATION CONCURRENCY=16 cargo bench --quiet --bench booking_flow 2>/dev/null | grep booking_flow)
field() { tr ' ' '\n' <<<"$flow" | awk -F= -v k="$1" '$1 == k {print $2}'; }
printf '| %-28s | %5s | %10s | %8s | %8s | %8s |\n' "booking_flow (jobs/s)" 16 "$(field jobs_per_sec)" "$(field p50_ms)" "$(field p99_ms)" 0
PGOPTIONS='--client-min-messages=warning' psql -q -h 127.0.0.1 -U postgres -d postgres \
  -c "DROP DATABASE IF EXISTS pgbench_tpcb" -c "CREATE DATABASE pgbench_tpcb" >/dev/null
pgbench -h 127.0.0.1 -U postgres -i -q -s 10 pgbench_tpcb >/dev/null 2>&1
tpcb=$(pgbench -h 127.0.0.1 -U postgres -c 16 -j 2 -T "$DURATION" pgbench_tpcb 2>&1 | awk '/^tps/ {print $3}')
printf '| %-28s | %5s | %10s | %8s | %8s | %8s |\n' "pgbench TPC-B (tps)" 16 "$tpcb" "-" "-" "-"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS pgbench_tpcb" >/dev/null

echo
login_rps=$(cat "$work/login.rps")
printf '| %-40s | %12s |\n' "measure" "value"
printf '|%s|%s|\n' "------------------------------------------" "--------------"
printf '| %-40s | %12s |\n' "start-up to serving (migrated), ms" "$startup_ms"
printf '| %-40s | %12s |\n' "idle RSS, MiB" "$(awk -v k="$idle_rss" 'BEGIN {printf "%.1f", k/1024}')"
printf '| %-40s | %12s |\n' "peak RSS after load, MiB" "$(awk -v k="$(hwm_kib)" 'BEGIN {printf "%.1f", k/1024}')"
printf '| %-40s | %12s |\n' "RSS growth during a 10 MiB upload, MiB" "$upload_delta_mib"
printf '| %-40s | %12s |\n' "raw argon2id hashes/s (all cores)" "$argon"
printf '| %-40s | %12s |\n' "login req/s as % of raw argon2id" "$(awk -v l="$login_rps" -v a="$argon" 'BEGIN {printf "%.0f%%", 100*l/a}')"
ratio() { awk -v a="$(cat "$work/$1.rps")" -v b="$(cat "$work/$2.rps")" 'BEGIN {printf "%.0f%%", 100*a/b}'; }
printf '| %-40s | %12s |\n' "GET /services/{id} as % of pgbench" "$(ratio service_by_id pgbench_service_by_id)"
printf '| %-40s | %12s |\n' "  each round, %" "$(cut -d' ' -f1 "$work/by_id.ratios" | paste -sd' ')"
printf '| %-40s | %12s |\n' "search q=plumbing as % of pgbench" "$(ratio search_plumbing pgbench_search_plumbing)"
