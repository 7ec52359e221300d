#!/usr/bin/env bash
# Makes PostgreSQL and Redis reachable on 127.0.0.1, idempotently: does nothing when
# they answer, starts them when installed but stopped, installs them (Debian packages)
# when absent. Also makes sure the client tools the tests call are on PATH.
set -euo pipefail

PG_PORT=5432
REDIS_PORT=6379

log() { printf 'services: %s\n' "$*"; }

apt_updated=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -h 127.0.0.1 -p "$PG_PORT" -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

wait_for() {
  local what=$1 check=$2
  for _ in $(seq 1 60); do
    if $check; then return 0; fi
    sleep 0.5
  done
  log "$what did not come up"
  return 1
}

# --- PostgreSQL -------------------------------------------------------------
command -v pg_isready >/dev/null || apt_install postgresql-client
if pg_up; then
  log "postgresql is up"
else
  fresh=0
  if ! ls /etc/postgresql/*/main/postgresql.conf >/dev/null 2>&1; then
    apt_install postgresql
    fresh=1
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ "$fresh" = 1 ]; then
    # The service connects as `postgres` without a password, like the machines it runs on.
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  log "starting postgresql $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for postgresql pg_up
fi

# --- Redis ------------------------------------------------------------------
command -v redis-server >/dev/null || apt_install redis-server
command -v redis-cli >/dev/null || apt_install redis-tools
if redis_up; then
  log "redis is up"
else
  log "starting redis"
  mkdir -p /var/lib/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --dir /var/lib/redis >/dev/null
  wait_for redis redis_up
fi

# --- Test servers -----------------------------------------------------------
# The integration tests start a real SMTP server (aiosmtpd) and a real OpenID Connect
# provider (oidc-provider-mock) of their own.
if ! python3 -c 'import aiosmtpd, oidc_provider_mock' 2>/dev/null; then
  log "installing aiosmtpd and oidc-provider-mock (PyPI)"
  # Debian's own python3 is "externally managed"; these test-only packages may go beside it.
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
    'aiosmtpd==1.4.6' 'oidc-provider-mock==0.3.4'
fi
