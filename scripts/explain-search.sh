#!/usr/bin/env bash
# EXPLAIN ANALYZE of every public sort, alone and with each filter, plus relevance search,
# against a seeded database (scripts/bench.sh seeds marketplace_bench with 100k listings).
# Prints: sort | filter | the index the plan walks | execution time. The SQL mirrors
# src/service/search.rs.
set -euo pipefail
DB=${DB:-marketplace_bench}
COLS="s.id, s.worker_id, s.title, s.description, s.category, s.price_cents, s.pricing_unit, s.city, s.duration_minutes, s.status, s.rating_avg, s.rating_count, s.created_at, s.updated_at"
FROM="services s JOIN workers w ON w.user_id = s.worker_id JOIN users u ON u.id = s.worker_id"
VIS="s.status = 'active' AND u.status = 'active' AND w.kyc_status = 'approved'"
WID=$(psql -h 127.0.0.1 -U postgres -d $DB -Atc "select worker_id from services limit 1")
declare -A ORDER=( [newest]="s.id DESC" [price_asc]="s.price_cents ASC, s.id ASC" [price_desc]="s.price_cents DESC, s.id DESC" [rating]="COALESCE(s.rating_avg, -1) DESC, s.id DESC" )
for sort in newest price_asc price_desc rating; do
  for filter in "" "AND s.category = 'plumbing'" "AND lower(s.city) = lower('Porto')" "AND s.price_cents >= 10000 AND s.price_cents <= 20000" "AND s.worker_id = '$WID'"; do
    sql="EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT $COLS, 0::real AS rank FROM $FROM WHERE $VIS $filter ORDER BY ${ORDER[$sort]} LIMIT 21"
    out=$(psql -h 127.0.0.1 -U postgres -d $DB -Atc "$sql")
    idx=$(grep -oE "Index (Only )?Scan( Backward)? using [a-z_]+" <<<"$out" | head -1)
    [ -z "$idx" ] && idx=$(grep -oE "(Bitmap Index Scan on [a-z_]+|Seq Scan on [a-z_]+)" <<<"$out" | head -1)
    exe=$(grep -oE "Execution Time: [0-9.]+ ms" <<<"$out")
    printf '%-10s | %-55s | %-55s | %s\n' "$sort" "${filter:-(none)}" "$idx" "$exe"
  done
done
for q in "plumbing" "lisbon" "reliable service"; do
  sql="EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT $COLS, ts_rank(s.search, query) AS rank FROM $FROM, websearch_to_tsquery('english', '$q') query WHERE s.search @@ query AND $VIS ORDER BY rank DESC, s.id DESC LIMIT 21"
  out=$(psql -h 127.0.0.1 -U postgres -d $DB -Atc "$sql")
  printf '%-10s | %-55s | %-55s | %s\n' relevance "q=$q" "$(grep -oE 'Bitmap Index Scan on [a-z_]+|Seq Scan on [a-z_]+' <<<"$out" | head -1)" "$(grep -oE 'Execution Time: [0-9.]+ ms' <<<"$out")"
done
