# SPDX-License-Identifier: MIT
# Starting a PostgreSQL cluster on a free loopback port (sourced by tests/servers/postgres.sh and
# tests/servers/postgres_replica.sh after tests/servers/ports.sh; they set data, log, sock
# and as_owner).

bin=/usr/lib/postgresql/15/bin  # Debian's PostgreSQL 15 server binaries

# pg_start_free PREFERRED NAME EXTRA_OPTIONS: pg_ctl start on PREFERRED, else the next candidate
# port; sets $port. The server binds the port itself: a port another process holds fails the
# start with "Address already in use" and the next candidate is tried.
pg_start_free() {
  local preferred=$1 name=$2 extra=$3 candidate
  for candidate in $(candidate_ports "$preferred"); do
    port=$candidate
    rm -f "$log"
    if "${as_owner[@]}" "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 -o \
      "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$sock $extra" start >/dev/null 2>&1; then
      return 0
    fi
    grep -q "Address already in use" "$log" 2>/dev/null || { cat "$log" >&2; exit 1; }
  done
  echo "$name: no free loopback port found" >&2
  exit 1
}
