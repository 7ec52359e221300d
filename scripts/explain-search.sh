#!/usr/bin/env bash
# EXPLAIN ANALYZE of every public sort, alone and with each filter, then relevance (`q`),
# "near me" (`near`, by distance and within a radius) and both together, against a
# seeded database (scripts/bench-search.sh seeds one at 100k or 1M listings and runs
# this). Prints: case | filter | the index the plan walks | rows read | execution time.
# The SQL mirrors src/service/search.rs.
set -euo pipefail
DB=${DB:-marketplace_bench}
NEAR=${NEAR:-38.7223,-9.1393}
lat=${NEAR%,*}; lng=${NEAR#*,}
q() { psql -h 127.0.0.1 -U postgres -d "$DB" -Atc "$1"; }
COLS="s.id, s.worker_id, s.title, s.description, s.category, s.price_cents, s.pricing_unit, s.city, s.duration_minutes, s.status, s.rating_avg, s.rating_count, s.created_at, s.updated_at, s.location_lat, s.location_lng"
WID=$(q "select worker_id from services limit 1")
# The distance order feeds an incremental sort through a subquery with an opaque LIMIT,
# as the server does (see search.rs).
OPAQUE="LIMIT (SELECT NULL::bigint)"
# Relevance by tier, each tier asked two ways (search.rs, by_tier): the window (the
# 2 000 newest listings passing the other filters, then the words among them) and, when
# that does not fill the page, every match of the words from their GIN index.
TIER1="s.title_search @@ query"
TIER2="s.search @@ query AND NOT s.title_search @@ query"
window() { echo "SELECT $COLS FROM (SELECT * FROM services s WHERE s.listed $3 ORDER BY s.id DESC LIMIT 2000) s, $1 WHERE $2 ORDER BY s.id DESC LIMIT 21"; }
matches() { echo "SELECT * FROM (SELECT $COLS FROM services s, $1 WHERE s.listed AND $2 $3 OFFSET 0) s ORDER BY s.id DESC LIMIT 21"; }
# ll_to_earth's body written out (the location index's expression), the chord of a
# radius (gc_to_sec) and, with words, a latitude band instead of the box (search.rs).
POINT="cube(cube(cube(6378168::float8 * cos(radians(s.location_lat)) * cos(radians(s.location_lng))), 6378168::float8 * cos(radians(s.location_lat)) * sin(radians(s.location_lng))), 6378168::float8 * sin(radians(s.location_lat)))"
ORIGIN="(SELECT cube(cube(cube(6378168::float8 * cos(lat) * cos(lng)), 6378168::float8 * cos(lat) * sin(lng)), 6378168::float8 * sin(lat)) AS origin FROM (SELECT radians($lat) AS lat, radians($lng) AS lng) degrees) here"
chord() { awk -v m="$1" 'BEGIN { r = 6378168; printf "%.10f", 2 * r * sin(m / (2 * r)) }'; }
band() { awk -v m="$1" -v lat="$lat" 'BEGIN { d = m / 6378168 * 45 / atan2(1, 1) + 1e-6; printf "s.location_lat BETWEEN %.10f AND %.10f", lat - d, lat + d }'; }
within() { echo "s.location_lat IS NOT NULL AND cube_enlarge(origin, $(chord "$1"), 3) @> $POINT AND $POINT <-> origin <= $(chord "$1")"; }
within_band() { echo "s.location_lat IS NOT NULL AND $(band "$1") AND $POINT <-> origin <= $(chord "$1")"; }

explain() { # case filter sql
  local out idx rows exe
  out=$(q "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) $3")
  idx=$(grep -oE "Index (Only )?Scan( Backward)? using [a-z_]+|Bitmap Index Scan on [a-z_]+|Seq Scan on [a-z_]+" <<<"$out" | sort -u | paste -sd' ' | cut -c1-70)
  rows=$(grep -oE "Buffers: shared hit=[0-9]+( read=[0-9]+)?" <<<"$out" | head -1 | sed 's/Buffers: shared //')
  exe=$(grep -oE "Execution Time: [0-9.]+ ms" <<<"$out" | sed 's/Execution Time: //')
  printf '%-12s | %-42s | %-70s | %-22s | %s\n' "$1" "$2" "$idx" "$rows" "$exe"
}

printf '%-12s | %-42s | %-70s | %-22s | %s\n' case filter "index (plan)" "buffers" "time"
declare -A ORDER=( [newest]="s.id DESC" [price_asc]="s.price_cents ASC, s.id ASC" [price_desc]="s.price_cents DESC, s.id DESC" [rating]="COALESCE(s.rating_avg, -1) DESC, s.id DESC" )
for sort in newest price_asc price_desc rating; do
  for filter in "" "AND s.category = 'plumbing'" "AND lower(s.city) = lower('Porto')" "AND s.price_cents >= 10000 AND s.price_cents <= 20000" "AND s.worker_id = '$WID'"; do
    explain "$sort" "${filter:-(none)}" "SELECT $COLS FROM services s WHERE s.listed $filter ORDER BY ${ORDER[$sort]} LIMIT 21"
  done
done
for word in plumbing lisbon reliable "wedding photography" zzzz plumb:*; do
  tsq="websearch_to_tsquery('english', '$word') query"
  [[ $word == *:* ]] && tsq="to_tsquery('english', '$word') query"
  for filter in "" "AND s.category = 'plumbing'" "AND s.category = 'gardening'"; do
    [ -n "$filter" ] && [ "$word" != plumbing ] && continue
    for tier in 1 2; do
      cond=$TIER1; [ $tier = 2 ] && cond=$TIER2
      explain "tier$tier-window" "q=$word $filter" "$(window "$tsq" "$cond" "$filter")"
      explain "tier$tier-match" "q=$word $filter" "$(matches "$tsq" "$cond" "$filter")"
    done
  done
done
explain similar "q=plumbr (no words match)" "SELECT $COLS, word_similarity(query, s.title) AS rank FROM services s, (SELECT 'plumbr'::text AS query) typed WHERE s.listed AND query <% s.title ORDER BY rank DESC, s.id DESC LIMIT 21"
for km in 1 10 25; do
  explain distance "near, radius_km=$km" "SELECT * FROM (SELECT $COLS, $POINT <-> origin AS knn FROM services s, $ORIGIN WHERE s.listed AND s.location_lat IS NOT NULL AND cube_enlarge(origin, $(chord $((km * 1000))), 3) @> $POINT ORDER BY $POINT <-> origin $OPAQUE) page WHERE page.knn <= $(chord $((km * 1000))) ORDER BY page.knn, page.id LIMIT 21"
  explain newest "near, radius_km=$km" "SELECT $COLS FROM services s, $ORIGIN WHERE s.listed AND $(within $((km * 1000))) ORDER BY s.id DESC LIMIT 21"
  explain tier1-match "q=plumbing, near, radius_km=$km" "$(matches "websearch_to_tsquery('english', 'plumbing') query, $ORIGIN" "$TIER1" "AND $(within_band $((km * 1000)))")"
  explain tier2-match "q=plumbing, near, radius_km=$km" "$(matches "websearch_to_tsquery('english', 'plumbing') query, $ORIGIN" "$TIER2" "AND $(within_band $((km * 1000)))")"
done
