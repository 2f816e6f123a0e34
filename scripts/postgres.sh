#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests: on 127.0.0.1, a free port, a temporary data dir,
# password authentication. Installs Debian's `postgresql` package when no server is installed
# (a fresh CI machine).
#
#   eval "$(scripts/postgres.sh start)"   # exports MODELYARD_TEST_POSTGRES_URL and _DIR
#   scripts/postgres.sh stop "$MODELYARD_TEST_POSTGRES_DIR"
#
# `start` prints shell `export` lines on stdout (everything else goes to stderr). The URL holds
# a random password; it is written nowhere else. initdb and the server run as the `postgres`
# user (initdb refuses root).
set -euo pipefail

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    echo "installing PostgreSQL (apt-get install postgresql)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 && apt-get install -y -q postgresql >&2
    dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$dir"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local bin dir port password
  bin=$(pg_bin)
  getent passwd postgres >/dev/null || useradd --system --home-dir /var/lib/postgresql postgres
  dir=$(mktemp -d "${TMPDIR:-/tmp}/modelyard-pg.XXXXXX")
  chmod 755 "$dir"
  mkdir "$dir/data" "$dir/socket"
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  printf '%s\n' "$password" >"$dir/pwfile"
  chown -R postgres: "$dir"
  chmod 600 "$dir/pwfile"
  runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
    --auth=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  rm -f "$dir/pwfile"
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    # fsync off: a test cluster needs no power-loss durability, and the two cores go further.
    # MODELYARD_PG_DURABLE=1 (the benches) keeps PostgreSQL's durable defaults, as in production.
    local durability="-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    [ "${MODELYARD_PG_DURABLE:-}" = 1 ] && durability=""
    if runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 -c max_connections=400 $durability" \
      start >&2; then
      echo "export MODELYARD_TEST_POSTGRES_URL=postgres://postgres:$password@127.0.0.1:$port/postgres"
      echo "export MODELYARD_TEST_POSTGRES_DIR=$dir"
      echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $dir" >&2
      return 0
    fi
    echo "starting PostgreSQL on port $port failed (attempt $attempt)" >&2
    tail -n 5 "$dir/server.log" >&2 || true
  done
  exit 1
}

stop() {
  local dir=${1:?usage: postgres.sh stop DIR} bin
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [ -f "$dir/data/postmaster.pid" ]; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
