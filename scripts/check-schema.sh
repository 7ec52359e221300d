#!/usr/bin/env bash
# Fails when src/db/schema.rs is not what `diesel print-schema` makes of the migrations,
# and checks that every down.sql undoes its up.sql (`migration redo --all`).
set -euo pipefail
cd "$(dirname "$0")/.."

DIESEL_VERSION=2.3.14
if ! diesel --version 2>/dev/null | grep -q "$DIESEL_VERSION"; then
  # The diesel CLI links libpq; the service itself does not.
  if ! dpkg -s libpq-dev >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq libpq-dev >/dev/null
  fi
  cargo install diesel_cli --version "$DIESEL_VERSION" --no-default-features --features postgres --locked --quiet
fi

db="marketplace_schema_check_$$"
url="postgres://postgres@127.0.0.1:5432/$db"
cleanup() { psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT

diesel database setup --database-url "$url" --migration-dir migrations >/dev/null
diesel migration redo --all --database-url "$url" --migration-dir migrations >/dev/null
generated=$(mktemp)
diesel print-schema --database-url "$url" --config-file diesel.toml > "$generated"
if ! diff -u src/db/schema.rs "$generated"; then
  echo "src/db/schema.rs drifted from the migrations: run 'diesel print-schema > src/db/schema.rs'" >&2
  exit 1
fi
echo "schema: src/db/schema.rs matches the migrations; every migration reverts and re-applies"
