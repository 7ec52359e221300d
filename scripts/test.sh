#!/usr/bin/env bash
# Runs every test: unit tests next to the code and the integration tests in tests/api,
# against the PostgreSQL and Redis that scripts/services.sh makes available.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
