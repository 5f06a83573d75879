#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A streaming read replica of the test PostgreSQL that tests/servers/postgres.sh started.
#   postgres_replica.sh start   pg_basebackup -R of the primary into $VSTASH_TEST_STATE/pg-replica,
#                               hot standby on 127.0.0.1:$VSTASH_TEST_PG_REPLICA_PORT (default the
#                               primary's port + 1; another free port if taken, published in
#                               $VSTASH_TEST_STATE/pg-replica.port), socket in its own directory;
#                               waits (bounded) until it accepts reads and streams from the primary
#   postgres_replica.sh stop    pg_ctl stop -m fast
#   postgres_replica.sh sql SQL run SQL on the replica as the superuser (database vstash_test):
#                               tests pause and resume replay with it
# Used by tests/integration/pgvector_replica_test.py, which starts and stops it.
set -euo pipefail

state=${VSTASH_TEST_STATE:?VSTASH_TEST_STATE must be set}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/ports.sh"
source "$here/pgctl.sh"
primary_port=$(published_port pg "${VSTASH_TEST_PG_PORT:-55432}")
port=$(published_port pg-replica "${VSTASH_TEST_PG_REPLICA_PORT:-$((primary_port + 1))}")
data=$state/pg-replica
sock=$state/pg-replica-run
primary_sock=$state/pg-run
log=$sock/postgres.log

as_owner=()
if [[ $(id -u) -eq 0 ]]; then
  owner=postgres
  getent passwd "$owner" >/dev/null || owner=vstashtest
  as_owner=(runuser -u "$owner" --)
fi

running() { [[ -f $data/PG_VERSION ]] && "${as_owner[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

psql_replica() {
  "${as_owner[@]}" "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d vstash_test -tA -c "$1"
}

start() {
  if running; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
  fi
  rm -rf "$data" "$sock" "$state/pg-replica.port"
  mkdir -p "$sock" "$data"
  chmod 700 "$data"
  [[ ${#as_owner[@]} -eq 0 ]] || chown "$owner" "$sock" "$data"
  # -R writes standby.signal and primary_conninfo (the primary's socket, the superuser).
  "${as_owner[@]}" "$bin/pg_basebackup" -h "$primary_sock" -p "$primary_port" -U postgres -D "$data" -R \
    -X stream -c fast >"$state/pg-replica-basebackup.log" 2>&1 || { cat "$state/pg-replica-basebackup.log" >&2; exit 1; }
  pg_start_free "${VSTASH_TEST_PG_REPLICA_PORT:-$((primary_port + 1))}" postgres_replica.sh "-c hot_standby=on"
  publish_port pg-replica "$port"
  # Bounded wait (30 s): the replica accepts reads and its WAL receiver streams.
  local streaming=""
  for _ in $(seq 1 300); do
    streaming=$(psql_replica "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null || true)
    [[ $streaming == streaming ]] && break
    sleep 0.1
  done
  [[ $streaming == streaming ]] || { echo "postgres_replica.sh: replica not streaming after 30 s" >&2; tail -20 "$log" >&2; exit 1; }
  echo "postgres_replica.sh: hot standby of 127.0.0.1:$primary_port on 127.0.0.1:$port"
}

stop() {
  if running; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$data" stop -m fast >/dev/null
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  sql) shift; psql_replica "$*" ;;
  *) echo "usage: postgres_replica.sh start|stop|sql SQL" >&2; exit 2 ;;
esac
