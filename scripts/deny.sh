#!/usr/bin/env bash
# Supply chain: `cargo deny check` against deny.toml (advisories, bans, licences,
# sources). cargo-deny is installed when missing. The advisory database is fetched from
# its git repository; where that host cannot be reached, the copy from the last
# successful fetch is used (its date is printed), and without any copy the advisory
# check is skipped with a loud notice while the other three still run.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deny >/dev/null || cargo install cargo-deny --locked --quiet
if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
  cargo deny --locked check
else
  db=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/*/ 2>/dev/null | head -n 1 || true)
  if [ -n "$db" ]; then
    echo "deny: advisory database not reachable; using the copy of $(git -C "$db" log -1 --format=%cs 2>/dev/null || echo 'unknown date')"
    cargo deny --locked --offline check
  else
    echo "deny: WARNING advisory database not reachable and no local copy: advisories NOT checked"
    cargo deny --locked check bans licenses sources
  fi
fi
