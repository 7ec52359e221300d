#!/usr/bin/env bash
# Supply chain: `cargo deny check` against deny.toml (advisories, bans, licences,
# sources). cargo-deny is installed when missing.
#
# The RustSec advisory database is a git clone that cargo-deny keeps under
# $CARGO_HOME/advisory-dbs. It is fetched from GitHub first; where GitHub cannot be
# reached, the clone already there is used. Either way the date of its newest commit is
# printed: advisories published after that date are not known to the check.
# ADVISORY_DB_MIRROR (a directory or URL holding a git copy of rustsec/advisory-db) makes
# that fetch read from the copy instead of GitHub: how a machine without GitHub gets, or
# refreshes, its clone. With no clone at all the advisory check is skipped with a loud
# warning; bans, licences and sources are still checked.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deny >/dev/null || cargo install cargo-deny --locked --quiet

fetch=(cargo deny fetch db)
if [ -n "${ADVISORY_DB_MIRROR:-}" ]; then
  mirror=$ADVISORY_DB_MIRROR
  # A local path as a file:// URL, so that cargo-deny's shallow clone stays shallow.
  [ -d "$mirror" ] && mirror="file://$(cd "$mirror" && pwd)"
  fetch=(env GIT_CONFIG_COUNT=1 "GIT_CONFIG_KEY_0=url.$mirror.insteadOf"
    GIT_CONFIG_VALUE_0=https://github.com/RustSec/advisory-db "${fetch[@]}")
fi
if timeout 120 "${fetch[@]}" >/dev/null 2>&1; then
  source="fetched now${ADVISORY_DB_MIRROR:+ from $ADVISORY_DB_MIRROR}"
else
  source="not reachable; using the clone already on this machine"
fi

db=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/advisory-db-*/ 2>/dev/null | head -n 1 || true)
if [ -z "$db" ]; then
  echo "deny: WARNING advisory database not reachable and no local copy: advisories NOT checked"
  exec cargo deny --locked check bans licenses sources
fi
newest=$(git -C "$db" log -1 --format=%cs)
age=$(( ($(date -u +%s) - $(git -C "$db" log -1 --format=%ct)) / 86400 ))
echo "deny: advisory database $source: newest advisory commit $newest ($age days old)"
if [ "$age" -gt 30 ]; then
  echo "deny: WARNING advisories published since $newest are not checked; refresh the clone" \
    "(internet access, or ADVISORY_DB_MIRROR=<a newer copy>)"
fi
# `--offline` also keeps cargo's metadata offline, and that resolves the dependencies of
# every platform: a build downloads only this one's (web-sys, android_system_properties…),
# so a fresh machine must fetch the rest first.
cargo fetch --locked --quiet
# The database is in place: the check itself does not fetch again. (cargo-deny refuses a
# clone last fetched more than 90 days ago: maximum-db-staleness.)
cargo deny --locked --offline check
