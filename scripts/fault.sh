#!/usr/bin/env bash
# Fault injection (scripts/fault.py): Redis stopped and restarted empty, PostgreSQL
# restarted, one of two instances SIGKILLed, SIGTERM, each under load and each with the
# security review's slow connections and searches beside it (scripts/attacks.py); each a
# PASS/FAIL line. Loopback only, against a private PostgreSQL cluster and redis-server on
# ports of their own (never the shared 5432/6379); about 40 s, hard-capped at three minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import websockets' 2>/dev/null || python3 -m pip install -q websockets
# The debug binary of the test build (scripts/test.sh built it for the CLI tests), so
# after the tests this is a no-op, and the browser step reuses it too.
cargo build --profile test --bin marketplace --locked --quiet
BIN=target/debug/marketplace timeout 180 python3 scripts/fault.py
