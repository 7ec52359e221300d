#!/usr/bin/env bash
# Abuse (scripts/abuse.py): 1 GiB chunked uploads, deeply nested JSON, 10,000 sockets from
# one user, 20,000 client addresses, the security review's search and slow-connection
# attacks (scripts/attacks.py, which scripts/fault.py also runs beside each fault); each a
# PASS/FAIL line with statuses and RSS. Loopback only, against a private PostgreSQL
# cluster and redis-server; about 50 s, hard-capped at two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import websockets' 2>/dev/null || python3 -m pip install -q websockets
cargo build --profile test --bin marketplace --locked --quiet
BIN=target/debug/marketplace timeout 120 python3 scripts/abuse.py
