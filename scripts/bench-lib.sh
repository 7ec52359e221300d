# Helpers shared by the bench scripts (sourced): wrk and pgbench rows of one table.
# Each row also leaves its requests/s in "$work/<name>.rps"; DURATION and DB must be set.

bench_header() {
  echo "| benchmark                    | conns |      req/s | p50 (ms) | p99 (ms) | non-2xx  |"
  echo "|------------------------------|-------|------------|----------|----------|----------|"
}

# wrk --latency prints "50%  1.23ms" lines; normalise to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[^m]s$/) n *= 1000; printf "%.2f", n }'; }

bench_row() { # name connections wrk-args...
  local name=$1 conns=$2; shift 2
  local out; out=$(wrk -t2 -c"$conns" -d"${DURATION}s" --latency "$@")
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
  printf '| %-28s | %5s | %10s | %8s | %8s | %8s |\n' "$name" "$conns" "$rps" "$p50" "$p99" "$non2xx"
  echo "$rps" >"$work/$name.rps"
}

pgbench_row() { # name clients script
  local out tps lat
  out=$(pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$2" -j 2 -T "$DURATION" -f "$3" "$DB" 2>&1)
  tps=$(awk '/^tps/ {print $3}' <<<"$out")
  lat=$(awk '/latency average/ {print $4}' <<<"$out")
  printf '| %-28s | %5s | %10s | %8s | %8s | %8s |\n' "$1" "$2" "$tps" "avg $lat" "-" "-"
  echo "$tps" >"$work/$1.rps"
}
