#!/usr/bin/env bash
# Browser tests of the admin console: the debug binary against a fresh database of its
# own, an admin made by the CLI, data seeded through the API, then headless Debian
# chromium driven by playwright-core (tests/browser/console.mjs). Screenshots of each
# page land in target/browser-screenshots/.
#
# Installs what it needs when missing: the `chromium` Debian package (and node, npm,
# curl, which the machine normally has) and the pinned
# npm packages of tests/browser (package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'browser: %s\n' "$*"; }

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v curl >/dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# The debug binary of the test build (scripts/test.sh built it for the CLI tests, so
# after it this is a no-op), not a release build.
cargo build --profile test --bin marketplace
BIN=target/debug/marketplace

RUN="browser_$$"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK="target/browser-run"
rm -rf "$WORK" target/browser-screenshots
mkdir -p "$WORK/uploads" "$WORK/logs" target/browser-screenshots

export APP_ENV=development
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$RUN"
export REDIS_URL="redis://127.0.0.1:6379/0"
export REDIS_KEY_PREFIX="$RUN:"
export BIND="127.0.0.1:$PORT"
export UPLOAD_DIR="$WORK/uploads"
export LOG_DIR="$WORK/logs"
export RATE_LIMIT_LOGIN_PER_MIN=1000
export RATE_LIMIT_PER_SEC=1000
export RATE_LIMIT_BURST=1000

SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  dropdb -h 127.0.0.1 -U postgres --if-exists "$RUN" 2>/dev/null || true
  redis-cli -h 127.0.0.1 --scan --pattern "$RUN:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null || true
}
trap cleanup EXIT

ADMIN_EMAIL="admin@example.com"
ADMIN_PASSWORD="a console passphrase"
"$BIN" migrate
printf '%s\n' "$ADMIN_PASSWORD" | "$BIN" create-admin --email "$ADMIN_EMAIL" --password-stdin

"$BIN" serve >"$WORK/server.out" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
  if curl -fs "http://$BIND/health" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fs "http://$BIND/health" >/dev/null

log "driving chromium against http://$BIND/admin"
BASE_URL="http://$BIND" ADMIN_EMAIL="$ADMIN_EMAIL" ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  SCREENSHOT_DIR="target/browser-screenshots" CHROMIUM="$(command -v chromium)" \
  timeout 120 node tests/browser/console.mjs
log "screenshots in target/browser-screenshots/"
