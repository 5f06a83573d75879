#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway Redis Cluster (Debian's redis-server and redis-cli) for the tests: 3 masters and
# 3 replicas on loopback.
#   redis_cluster.sh start   start six fresh redis-server processes on 127.0.0.1, client ports
#                    BASE..BASE+5 and cluster bus ports BASE+6..BASE+11 (the default bus port,
#                    port + 10000, would leave the port range), BASE being
#                    $VSTASH_TEST_REDIS_CLUSTER_PORT if all twelve are free, else another
#                    (tests/servers/ports.sh; published in $VSTASH_TEST_STATE/redis-cluster.port,
#                    the six client ports in redis-cluster.ports), data, nodes.conf, append-only
#                    file and pidfile of node I in $VSTASH_TEST_STATE/redis-cluster/nI; joins them
#                    with `redis-cli --cluster create --cluster-replicas 1` and waits until every
#                    node says cluster_state:ok with all 16384 slots served and every master has
#                    its replica, in sync. Short node timeout (2 s), so a killed master's replica takes
#                    over within seconds; append-only on, so a restarted node has its data.
#                    The nodes need a password (masterauth for the replicas). Writes
#                    $VSTASH_TEST_STATE/redis_cluster.yaml with the profiles:
#                      redis_cluster       type redis, cluster: true, nodes: the six host:port
#                      redis_cluster_node  type redis, host/port of node 0 alone (a plain
#                                          profile that must be detected as a cluster)
#   redis_cluster.sh stop    SIGTERM to the nodes start started (by their pids; never a server
#                    found on a port), then waits for them to go
#   redis_cluster.sh cli PORT ARGS...   redis-cli to the node on PORT (as the default user)
#   redis_cluster.sh pid PORT           the pid of the node start started on PORT
#   redis_cluster.sh restart PORT       start the node on PORT again (after a test killed it):
#                    it rejoins from its nodes.conf, as a replica if it lost its slots
#   redis_cluster.sh wait    wait until the cluster is ok again (every node up, slots covered)
# State dirs differ per run, so a test may start a private cluster with its own
# VSTASH_TEST_STATE (tests/integration/redis_cluster_test.py does).
set -euo pipefail

state=${VSTASH_TEST_STATE:?VSTASH_TEST_STATE must be set}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/ports.sh"
source "$here/redisproc.sh"
base=$(published_port redis-cluster "${VSTASH_TEST_REDIS_CLUSTER_PORT:-56400}")
dir=$state/redis-cluster
password=vstash-test-cluster-pw-R7d
nodes=6
node_timeout_ms=2000

cli_port() {
  local p=$1
  shift
  REDISCLI_AUTH=$password redis-cli -h 127.0.0.1 -p "$p" --no-auth-warning "$@"
}
node_dir() { echo "$dir/n$1"; }

# Node I (0-5) is running: the pid in its pidfile is alive and is a redis-server.
running() { redis_running "$(node_dir "$1")/redis.pid"; }

# launch I: start node I (client port base+I, bus port base+6+I) in the background.
launch() {
  local i=$1 d
  d=$(node_dir "$i")
  mkdir -p "$d"
  redis-server --bind 127.0.0.1 --port $((base + i)) --cluster-port $((base + nodes + i)) \
    --dir "$d" --daemonize no --logfile "$d/redis.log" \
    --cluster-enabled yes --cluster-config-file "$d/nodes.conf" \
    --cluster-node-timeout "$node_timeout_ms" --appendonly yes --save "" \
    --protected-mode yes --requirepass "$password" --masterauth "$password" \
    --repl-diskless-sync-delay 0 \
    --maxmemory-policy noeviction \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$d/redis.pid"
}

# await I: 0 once node I answers as our own process; 1 if it could not bind its ports; 2 if
# it failed otherwise or did not answer within 20 s.
await() {
  local d
  d=$(node_dir "$1")
  redis_await "$(cat "$d/redis.pid")" "$d/redis.log" $((base + $1)) cli_port $((base + $1))
}

# start_on BASE: start the six nodes. 0: all up; 1: a port was taken (the nodes started are
# stopped again); anything else is fatal.
start_on() {
  base=$1
  rm -rf "$dir"
  local i rc=0
  for i in $(seq 0 $((nodes - 1))); do launch "$i"; done
  for i in $(seq 0 $((nodes - 1))); do
    await "$i" || { rc=$?; break; }
  done
  [[ $rc -eq 0 ]] || stop
  return "$rc"
}

# The cluster is whole: every node up, cluster_state:ok, all slots served, and three masters
# with a replica each as every node sees it.
healthy() {
  local i info
  for i in $(seq 0 $((nodes - 1))); do
    info=$(cli_port $((base + i)) cluster info 2>/dev/null) || return 1
    grep -q '^cluster_state:ok' <<<"$info" || return 1
    grep -q '^cluster_slots_ok:16384' <<<"$info" || return 1
    grep -q "^cluster_known_nodes:$nodes" <<<"$info" || return 1
    [[ $(cli_port $((base + i)) cluster nodes 2>/dev/null | awk '$3 ~ /slave/ && $3 !~ /fail/' | wc -l) -eq 3 ]] ||
      return 1
    # A replica that never finished its first sync cannot take over (its data is too old).
    info=$(cli_port $((base + i)) info replication 2>/dev/null) || return 1
    grep -q '^role:master' <<<"$info" || grep -q '^master_link_status:up' <<<"$info" || return 1
  done
}

wait_healthy() {  # bounded: 120 s (a loaded CI machine)
  local deadline=$((SECONDS + 120))
  while ((SECONDS < deadline)); do
    healthy && return 0
    sleep 0.1
  done
  echo "redis_cluster.sh: the cluster on 127.0.0.1:$base-$((base + nodes - 1)) is not ok after 120 s" >&2
  cli_port "$base" cluster info >&2 || true
  return 1
}

write_yaml() {
  local i list=()
  for i in $(seq 0 $((nodes - 1))); do list+=("\"127.0.0.1:$((base + i))\""); done
  local joined
  joined=$(
    IFS=,
    echo "${list[*]}"
  )
  cat >"$state/redis_cluster.yaml.tmp" <<YAML
# Written by tests/servers/redis_cluster.sh for the test cluster on 127.0.0.1:$base-$((base + nodes - 1)).
profiles:
  redis_cluster:
    type: redis
    cluster: true
    nodes: [${joined//,/, }]
    password: $password
    prefix: "vc:"
    ttl: 0
    timeout_ms: 10000
  redis_cluster_node:
    type: redis
    host: 127.0.0.1
    port: $base
    password: $password
    prefix: "vcn:"
    timeout_ms: 10000
YAML
  mv -f "$state/redis_cluster.yaml.tmp" "$state/redis_cluster.yaml"
}

start() {
  stop
  rm -rf "$dir" "$state/redis_cluster.yaml" "$state/redis-cluster.port" "$state/redis-cluster.ports"
  local candidate rc=1
  for candidate in $(candidate_ports "${VSTASH_TEST_REDIS_CLUSTER_PORT:-56400}"); do
    start_on "$candidate" && rc=0 || rc=$?
    [[ $rc -eq 1 ]] || break
  done
  [[ $rc -eq 0 ]] || { [[ $rc -eq 1 ]] && echo "redis_cluster.sh: no free loopback ports found" >&2; exit 1; }
  local i addrs=()
  for i in $(seq 0 $((nodes - 1))); do addrs+=("127.0.0.1:$((base + i))"); done
  if ! REDISCLI_AUTH=$password redis-cli --no-auth-warning --cluster create "${addrs[@]}" \
    --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1; then
    echo "redis_cluster.sh: redis-cli --cluster create failed:" >&2
    tail -20 "$dir/create.log" >&2
    stop
    exit 1
  fi
  wait_healthy || { stop; exit 1; }
  write_yaml
  publish_port redis-cluster "$base"
  printf '%s\n' $(seq "$base" $((base + nodes - 1))) >"$state/redis-cluster.ports.tmp"
  mv -f "$state/redis-cluster.ports.tmp" "$state/redis-cluster.ports"
  echo "redis_cluster.sh: redis $(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/') cluster on 127.0.0.1:$base-$((base + nodes - 1)); profiles in $state/redis_cluster.yaml"
}

stop() {  # SIGTERM to every node first (each takes a second or two to exit), then wait
  local i pids=()
  for i in $(seq 0 $((nodes - 1))); do
    if running "$i"; then
      pids+=("$(cat "$(node_dir "$i")/redis.pid")")
      kill "${pids[-1]}" 2>/dev/null || true
    fi
  done
  for i in "${pids[@]}"; do  # a node that ignores SIGTERM for 20 s is killed: never left behind
    redis_wait_gone "$i" || kill -9 "$i" 2>/dev/null || true
  done
  rm -f "$dir"/n*/redis.pid
}

# node_index PORT: I of the node on PORT, or a usage error.
node_index() {
  local i=$(($1 - base))
  ((i >= 0 && i < nodes)) || { echo "redis_cluster.sh: $1 is not a port of this cluster ($base-$((base + nodes - 1)))" >&2; exit 2; }
  echo "$i"
}

restart() {
  local i rc=0
  i=$(node_index "$1")
  running "$i" && { echo "redis_cluster.sh: the node on $1 is running" >&2; exit 1; }
  launch "$i"
  await "$i" || rc=$?
  [[ $rc -eq 0 ]] || { echo "redis_cluster.sh: the node on $1 did not come back" >&2; exit 1; }
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  cli) shift; p=${1:?usage: redis_cluster.sh cli PORT ARGS...}; shift; cli_port "$p" "$@" ;;
  pid) cat "$(node_dir "$(node_index "${2:?usage: redis_cluster.sh pid PORT}")")/redis.pid" ;;
  restart) restart "${2:?usage: redis_cluster.sh restart PORT}" ;;
  wait) wait_healthy ;;
  *) echo "usage: redis_cluster.sh start|stop|cli PORT ARGS...|pid PORT|restart PORT|wait" >&2; exit 2 ;;
esac
