#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway redis-server (Debian's package) for the tests and the benchmark.
#   redis.sh start   start a fresh server on 127.0.0.1:$VSTASH_TEST_REDIS_PORT, daemonized,
#                    data and pidfile in $VSTASH_TEST_STATE/redis, no persistence; the
#                    default user needs a password and an ACL user "vstash" exists, so that
#                    auth can be tested. Writes $VSTASH_TEST_STATE/redis.yaml with profiles:
#                      redis      the store, no expiry (the contract suite's profile)
#                      redis_ttl  the store with ttl: 30 (tests shorten it with `set`)
#                      redis_acl  the store through the ACL user
#                      cache      a redis profile used as a cache (ttl 600, own prefix)
#                      local      a local store, and local_cached = local + `cache: cache`
#                      cache_down a cache profile pointing at a closed port
#   redis.sh stop    redis-cli shutdown nosave (then waits for the pid to go)
#   redis.sh cli ARGS...   redis-cli as the default user (tests use it to inspect or break)
#   redis.sh pid     the server's pid (tests kill it to simulate a crash)
set -euo pipefail

state=${VSTASH_TEST_STATE:?VSTASH_TEST_STATE must be set}
port=${VSTASH_TEST_REDIS_PORT:-56379}
dir=$state/redis
pidfile=$dir/redis.pid
log=$dir/redis.log
password=vstash-test-redis-pw-K3m
acl_password=vstash-acl-pw-T8q
# A loopback port nothing listens on: the "cache is down" profile points here.
closed_port=$((port + 7))

cli() { REDISCLI_AUTH=$password redis-cli -h 127.0.0.1 -p "$port" --no-auth-warning "$@"; }

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

wait_gone() {  # bounded: 20 s
  local pid=$1
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "redis.sh: server pid $pid still running after 20 s" >&2
  return 1
}

start() {
  if running; then
    local pid
    pid=$(cat "$pidfile")
    cli shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    wait_gone "$pid"
  fi
  rm -rf "$dir" "$state/redis.yaml"
  mkdir -p "$dir"
  # Persistence off (save "", appendonly no): tests start from nothing and CONFIG SET
  # maxmemory to provoke OOM; stop-writes-on-bgsave-error stays at its default.
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize yes --pidfile "$pidfile" \
    --logfile "$log" --save "" --appendonly no --protected-mode yes \
    --requirepass "$password" \
    --maxmemory-policy noeviction \
    >/dev/null
  # Bounded wait: 20 s at most.
  local ok=0
  for _ in $(seq 1 200); do
    if cli ping 2>/dev/null | grep -q PONG; then
      ok=1
      break
    fi
    sleep 0.1
  done
  if [[ $ok -ne 1 ]]; then
    echo "redis.sh: server not ready on 127.0.0.1:$port after 20 s" >&2
    tail -20 "$log" >&2 || true
    exit 1
  fi
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
  if running; then
    local pid
    pid=$(cat "$pidfile")
    cli shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    wait_gone "$pid"
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  cli) shift; cli "$@" ;;
  pid) cat "$pidfile" ;;
  *) echo "usage: redis.sh start|stop|cli ARGS...|pid" >&2; exit 2 ;;
esac
