#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway PostgreSQL 15 + pgvector cluster for the tests and the benchmark.
#   postgres.sh start   initdb a fresh cluster in $VSTASH_TEST_STATE/pg, listen on
#                       127.0.0.1:$VSTASH_TEST_PG_PORT if free, else on another free port
#                       (tests/servers/ports.sh; published in $VSTASH_TEST_STATE/pg.port),
#                       socket in the state dir, create the
#                       password (scram) user "vstash", database vstash_test with the vector
#                       extension and vstash_noext without it, and write
#                       $VSTASH_TEST_STATE/pgvector.yaml (profile "pg", sslmode disable) and
#                       pgvector-tls.yaml (profile "pg_tls", sslmode verify-full against the
#                       test CA). The server has ssl=on with
#                       the certificates of tests/servers/tls.sh (made in $VSTASH_TEST_STATE/tls;
#                       server.* and wronghost.* are copied into the socket dir for the server)
#   postgres.sh stop    pg_ctl stop -m fast
#   postgres.sh restart pg_ctl restart -m fast, keeping the data (tests restart the server
#                       in the middle of an ingest)
#   postgres.sh sql DB SQL   run SQL as the superuser (tests use it to break things)
# initdb refuses to run as root, so as root the server runs as the "postgres" user (or a
# "vstashtest" user created for it).
set -euo pipefail

state=${VSTASH_TEST_STATE:?VSTASH_TEST_STATE must be set}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/ports.sh"
source "$here/pgctl.sh"
port=$(published_port pg "${VSTASH_TEST_PG_PORT:-55432}")
data=$state/pg
sock=$state/pg-run
log=$sock/postgres.log  # in a directory the server user owns
password=vstash-test-pw-Q7x
superuser=postgres

as_owner=()
if [[ $(id -u) -eq 0 ]]; then
  owner=postgres
  if ! getent passwd "$owner" >/dev/null; then
    owner=vstashtest
    getent passwd "$owner" >/dev/null || useradd --system --no-create-home "$owner"
  fi
  as_owner=(runuser -u "$owner" --)
fi

psql_super() {  # psql_super DB SQL...
  local db=$1
  shift
  "${as_owner[@]}" "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U "$superuser" -d "$db" "$@"
}

running() { [[ -f $data/PG_VERSION ]] && "${as_owner[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

start() {
  if running; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
  fi
  rm -rf "$data" "$sock" "$state/pgvector.yaml" "$state/pgvector-tls.yaml" "$state/pg.port"
  mkdir -p "$state" "$data" "$sock"
  if [[ ${#as_owner[@]} -gt 0 ]]; then
    chown "$owner" "$data" "$sock"
    chmod 700 "$data"
  fi
  bash "$here/tls.sh" make "$state/tls"
  cp "$state/tls/server.pem" "$state/tls/server.key" "$state/tls/wronghost.pem" "$state/tls/wronghost.key" "$sock/"
  if [[ ${#as_owner[@]} -gt 0 ]]; then
    chown "$owner" "$sock"/*.pem "$sock"/*.key
  fi
  "${as_owner[@]}" "$bin/initdb" -D "$data" -U "$superuser" --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1 || { cat "$state/initdb.log" >&2; exit 1; }
  # In the config file, not on the command line, so that a test can ALTER SYSTEM another
  # certificate and reload (tls_test.py's wrong host name).
  printf "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n" "$sock/server.pem" "$sock/server.key" \
    >>"$data/postgresql.conf"
  pg_start_free "${VSTASH_TEST_PG_PORT:-55432}" postgres.sh "-c fsync=off -c max_connections=50"
  # Bounded wait: 60 s at most.
  for _ in $(seq 1 120); do
    if "$bin/pg_isready" -q -h "$sock" -p "$port"; then
      break
    fi
    sleep 0.5
  done
  "$bin/pg_isready" -q -h "$sock" -p "$port" || { echo "postgres.sh: server not ready after 60 s" >&2; tail -20 "$log" >&2; exit 1; }
  publish_port pg "$port"
  psql_super postgres <<SQL
CREATE ROLE vstash LOGIN PASSWORD '$password';
CREATE DATABASE vstash_test OWNER vstash;
CREATE DATABASE vstash_noext OWNER vstash;
SQL
  psql_super vstash_test -c "CREATE EXTENSION vector"
  cat >"$state/pgvector.yaml" <<YAML
# Written by tests/servers/postgres.sh for the test cluster on 127.0.0.1:$port.
profiles:
  pg:
    type: pgvector
    host: 127.0.0.1
    port: $port
    database: vstash_test
    user: vstash
    password: $password
    table_name: vstash
    connect_timeout: 5
    sslmode: disable
YAML
  cat >"$state/pgvector-tls.yaml" <<YAML
# Written by tests/servers/postgres.sh: the test cluster over TLS, verified against the test CA.
profiles:
  pg_tls:
    type: pgvector
    host: 127.0.0.1
    port: $port
    database: vstash_test
    user: vstash
    password: $password
    table_name: vstash
    connect_timeout: 5
    sslmode: verify-full
    tls_ca: $state/tls/ca.pem
YAML
  echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') with pgvector on 127.0.0.1:$port"
}

stop() {
  if running; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$data" stop -m fast >/dev/null
  fi
}

restart() {
  running || { echo "postgres.sh: no server running in $data" >&2; exit 1; }
  "${as_owner[@]}" "$bin/pg_ctl" -D "$data" -l "$log" restart -m fast -w -t 60 >/dev/null
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  restart) restart ;;
  sql) shift; db=$1; shift; psql_super "$db" -tA -c "$*" ;;
  *) echo "usage: postgres.sh start|stop|restart|sql DB SQL" >&2; exit 2 ;;
esac
