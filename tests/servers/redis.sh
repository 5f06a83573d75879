#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway redis-server (Debian's package) for the tests and the benchmark.
#   redis.sh start   start a fresh server on 127.0.0.1, on $VSTASH_TEST_REDIS_PORT if free, else
#                    on another free port (tests/servers/ports.sh; the port is published in
#                    $VSTASH_TEST_STATE/redis.port), in the background, data and pidfile in
#                    $VSTASH_TEST_STATE/redis, no persistence; the
#                    default user needs a password and an ACL user "vstash" exists, so that
#                    auth can be tested. Writes $VSTASH_TEST_STATE/redis.yaml with profiles:
#                      redis      the store, no expiry (the contract suite's profile)
#                      redis_ttl  the store with ttl: 30 (tests shorten it with `set`)
#                      redis_acl  the store through the ACL user
#                      cache      a redis profile used as a cache (ttl 600, own prefix)
#                      local      a local store, and local_cached = local + `cache: cache`
#                      cache_down a cache profile pointing at a closed port
#   redis.sh stop    SIGTERM to the server start started (by its pid; never a server found on
#                    the port), then waits for the pid to go
#   redis.sh cli ARGS...   redis-cli as the default user (tests use it to inspect or break)
#   redis.sh pid     the server's pid (tests kill it to simulate a crash)
set -euo pipefail

state=${VSTASH_TEST_STATE:?VSTASH_TEST_STATE must be set}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/ports.sh"
source "$here/redisproc.sh"
port=$(published_port redis "${VSTASH_TEST_REDIS_PORT:-56379}")
dir=$state/redis
pidfile=$dir/redis.pid
log=$dir/redis.log
password=vstash-test-redis-pw-K3m
acl_password=vstash-acl-pw-T8q

cli() { REDISCLI_AUTH=$password redis-cli -h 127.0.0.1 -p "$port" --no-auth-warning "$@"; }

# start_on PORT: start a server on PORT. 0: it is up and answering is our own process;
# 1: PORT is taken (the server could not bind it); anything else is fatal.
start_on() {
  port=$1
  rm -f "$log"
  # Persistence off (save "", appendonly no): tests start from nothing and CONFIG SET
  # maxmemory to provoke OOM; stop-writes-on-bgsave-error stays at its default.
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize no \
    --logfile "$log" --save "" --appendonly no --protected-mode yes \
    --requirepass "$password" \
    --maxmemory-policy noeviction \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$pidfile"
  redis_await "$(cat "$pidfile")" "$log" "$port" cli  # bounded: 20 s
}

start() {
  stop
  rm -rf "$dir" "$state/redis.yaml" "$state/redis.port"
  mkdir -p "$dir"
  local candidate rc=1
  for candidate in $(candidate_ports "${VSTASH_TEST_REDIS_PORT:-56379}"); do
    start_on "$candidate" && rc=0 || rc=$?
    [[ $rc -eq 1 ]] || break
  done
  [[ $rc -eq 0 ]] || { [[ $rc -eq 1 ]] && echo "redis.sh: no free loopback port found" >&2; exit 1; }
  publish_port redis "$port"
  # A loopback port nothing listens on: the "cache is down" profile points here.
  local closed_port
  for closed_port in $(candidate_ports $((port + 7))); do
    port_refused "$closed_port" && break
  done
  cli ACL SETUSER vstash on ">$acl_password" '~*' '&*' '+@all' >/dev/null
  cat >"$state/redis.yaml" <<YAML
# Written by tests/servers/redis.sh for the test server on 127.0.0.1:$port.
profiles:
  redis:
    type: redis
    host: 127.0.0.1
    port: $port
    password: $password
    prefix: "vt:"
    ttl: 0
    timeout_ms: 10000
  redis_ttl:
    type: redis
    host: 127.0.0.1
    port: $port
    password: $password
    prefix: "vtt:"
    ttl: 30
  redis_acl:
    type: redis
    host: 127.0.0.1
    port: $port
    username: vstash
    password: $acl_password
    prefix: "vta:"
  cache:
    type: redis
    host: 127.0.0.1
    port: $port
    password: $password
    prefix: "vtc:"
    ttl: 600
    timeout_ms: 2000
  cache_down:
    type: redis
    host: 127.0.0.1
    port: $closed_port
    prefix: "vtc:"
    ttl: 600
  local:
    type: local
    path: $dir/local.db
  local_cached:
    type: local
    path: $dir/local.db
    cache: cache
  local_cache_down:
    type: local
    path: $dir/local.db
    cache: cache_down
YAML
  echo "redis.sh: redis $(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/') on 127.0.0.1:$port (pid $(cat "$pidfile")); profiles in $state/redis.yaml"
}

stop() {
  if redis_running "$pidfile"; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    redis_wait_gone "$pid"
  fi
  rm -f "$pidfile"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  cli) shift; cli "$@" ;;
  pid) cat "$pidfile" ;;
  *) echo "usage: redis.sh start|stop|cli ARGS...|pid" >&2; exit 2 ;;
esac
