#!/usr/bin/env bash
# Replays the security review's attacks against a scratch release server and prints
# what each got (scripts/probe_security.py). Not part of the test suite; bounded in
# time (about a minute and a half).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-18081}
DB=marketplace_probe
scripts/services.sh >/dev/null
cargo build --release --quiet

work=$(mktemp -d)
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" BIND="127.0.0.1:$PORT"
export LOG_LEVEL=warn LOG_DIR="$work/logs" UPLOAD_DIR="$work/uploads" REDIS_KEY_PREFIX="probe:"
export TRUSTED_PROXIES=127.0.0.1 RATE_LIMIT_PER_SEC=100000 RATE_LIMIT_BURST=100000
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
redis-cli --scan --pattern 'probe:*' | xargs -r redis-cli del >/dev/null

server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

./target/release/marketplace migrate >/dev/null
# Listings for the searches to rank.
./target/release/marketplace seed --workers 200 --services 20000 --clients 10 | grep seeded
./target/release/marketplace >"$work/server.log" 2>&1 & server_pid=$!
until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; do sleep 0.05; done

BASE="http://127.0.0.1:$PORT" UPLOAD_DIR="$work/uploads" timeout 300 python3 scripts/probe_security.py
