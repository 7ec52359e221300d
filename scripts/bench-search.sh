#!/usr/bin/env bash
# Catalog read benchmarks at SERVICES listings (default 100k) against the release binary
# on a scratch database (dropped at the end); prints a table. Not part of the tests.
#
#   scripts/bench-search.sh                      # 100k listings, 10 s per row
#   SERVICES=1000000 WORKERS=20000 scripts/bench-search.sh
#
# Rows, 32 connections each, every server row beside pgbench in the same run:
#   GET /services/{id} vs pgbench's bare primary-key SELECT on services (ROUNDS alternations,
#     median round);
#   GET /services?q=$WORD vs pgbench running the rank-every-match SQL (ts_rank over every
#     match, then a top-N sort: the ranking before search ranked by tier);
#   GET /services?near=<Lisbon centre>&radius_km=10&sort=distance;
#   GET /services?q=$WORD&near=<Lisbon centre>&radius_km=10;
#   GET /services?q=bathroom plu (prefix) and ?q=plumbr (typo fallback).
# Then scripts/explain-search.sh on the same data.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES=${SERVICES:-100000}
WORKERS=${WORKERS:-$(( SERVICES / 50 ))}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WORD=${WORD:-plumbing}
NEAR=${NEAR:-38.7223,-9.1393}
PORT=${PORT:-18085}
BASE="http://127.0.0.1:$PORT"
DB=${DB:-marketplace_bench_search}

scripts/services.sh >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export BIND="127.0.0.1:$PORT" LOG_LEVEL=warn LOG_DIR="${TMPDIR:-/tmp}/marketplace-bench-search-logs"
work=$(mktemp -d)
export UPLOAD_DIR="$work/uploads" REDIS_KEY_PREFIX="benchsearch:"
export RATE_LIMIT_PER_SEC=100000000 RATE_LIMIT_BURST=100000000 RATE_LIMIT_LOGIN_PER_MIN=100000000
# Searches run with the production limits (pool size, SEARCH_MAX_PER_IP): wrk's requests
# come through a trusted proxy, each from a random address of 10.0.0.0/16 (search.lua),
# as a crowd of clients would, so only the general per-address rate limit is lifted.
export TRUSTED_PROXIES=127.0.0.1
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
redis-cli --scan --pattern 'benchsearch:*' | xargs -r redis-cli del >/dev/null

server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

./target/release/marketplace migrate >/dev/null
t0=$(date +%s)
./target/release/marketplace seed --workers "$WORKERS" --services "$SERVICES" --clients 100 | grep seeded
seed_s=$(( $(date +%s) - t0 ))
./target/release/marketplace >"$work/server.log" 2>&1 & server_pid=$!
until curl -sf "$BASE/health" >/dev/null; do sleep 0.05; done

psql_db() { psql -q -h 127.0.0.1 -U postgres -d "$DB" "$@"; }
service_id=$(psql_db -Atc "SELECT id FROM services WHERE listed ORDER BY id LIMIT 1 OFFSET $(( SERVICES / 2 ))")
matches=$(psql_db -Atc "SELECT count(*) FROM services WHERE listed AND search @@ websearch_to_tsquery('english', '$WORD')")
title_matches=$(psql_db -Atc "SELECT count(*) FROM services WHERE listed AND title_search @@ websearch_to_tsquery('english', '$WORD')")
cat >"$work/search.lua" <<'LUA'
-- Each wrk thread has its own Lua state: seed each differently.
init = function()
  math.randomseed(tonumber(tostring({}):match("0x(%x+)") or "1", 16) % 2147483647)
end
request = function()
  wrk.headers["X-Forwarded-For"] = "10.0." .. math.random(0, 255) .. "." .. math.random(1, 254)
  return wrk.format()
end
LUA

COLS="id, worker_id, title, description, category, price_cents, pricing_unit, city, duration_minutes, status, rating_avg, rating_count, created_at, updated_at, location_lat, location_lng"
cat >"$work/pk.sql" <<SQL
SELECT $COLS FROM services WHERE id = '$service_id';
SQL
cat >"$work/rank_all.sql" <<SQL
SELECT $COLS, ts_rank(search, query) AS rank FROM services, websearch_to_tsquery('english', '$WORD') query WHERE listed AND search @@ query ORDER BY rank DESC, id DESC LIMIT 21;
SQL

echo
echo "$SERVICES listings ($WORKERS workers), seeded in ${seed_s} s; q=$WORD matches $matches ($title_matches in titles); load: $(uptime | sed 's/.*load/load/')"
echo
bench_header
for i in $(seq "$ROUNDS"); do
  bench_row service_by_id 32 "$BASE/api/v1/services/$service_id" >"$work/round$i.rows"
  pgbench_row pgbench_pk_lookup 32 "$work/pk.sql" >>"$work/round$i.rows"
  awk -v a="$(cat "$work/service_by_id.rps")" -v b="$(cat "$work/pgbench_pk_lookup.rps")" -v i="$i" \
    'BEGIN {printf "%.1f %d %s %s\n", 100*a/b, i, a, b}' >>"$work/by_id.ratios"
done
read -r _ median by_id_rps pg_rps < <(sort -n "$work/by_id.ratios" | sed -n "$(( (ROUNDS + 1) / 2 ))p")
cat "$work/round$median.rows"
search_row() { bench_row "$1" 32 -s "$work/search.lua" "$2"; }
search_row "search_q" "$BASE/api/v1/services?q=$WORD"
pgbench_row pgbench_rank_every_match 32 "$work/rank_all.sql"
search_row "near_10km_by_distance" "$BASE/api/v1/services?near=$NEAR&radius_km=10&sort=distance"
search_row "q_and_near_10km" "$BASE/api/v1/services?q=$WORD&near=$NEAR&radius_km=10"
# Words people type: a prefix (no exact match, then `plu:*`) and a typo (trigram fallback).
search_row "q_prefix_bathroom_plu" "$BASE/api/v1/services?q=bathroom%20plu"
search_row "q_typo_plumbr" "$BASE/api/v1/services?q=plumbr"
echo
printf 'server RSS after the rows: %s MiB (peak %s MiB)\n' \
  "$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$server_pid/status")" \
  "$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$server_pid/status")"
printf 'GET /services/{id} / pgbench PK lookup: %s (rounds: %s)\n' \
  "$(awk -v a="$by_id_rps" -v b="$pg_rps" 'BEGIN {printf "%.2f", a/b}')" "$(cut -d' ' -f1 "$work/by_id.ratios" | paste -sd' ')"
printf 'search q=%s / pgbench rank-every-match: %sx\n' "$WORD" \
  "$(awk -v a="$(cat "$work/search_q.rps")" -v b="$(cat "$work/pgbench_rank_every_match.rps")" 'BEGIN {printf "%.1f", a/b}')"
echo
DB=$DB NEAR=$NEAR scripts/explain-search.sh
