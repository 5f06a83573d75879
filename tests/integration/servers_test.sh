#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test servers never use a server they did not start (issue 14, item 18): with a foreign
# redis-server (no password) on the configured Redis port and foreign listeners on the
# PostgreSQL and double ports, tests/servers/*.sh start their own servers on other ports,
# publish them in $state/NAME.port and the profile YAMLs, vstash works against them, and the
# foreign servers are untouched (still running, no keys written); likewise redis_cluster.sh with
# a foreign listener among its twelve ports. Two redis.sh starts at once
# with the same configured port get two servers. Everything runs in a state dir of its own.
# Env: VSTASH_BIN, VSTASH_SOURCE_DIR, VSTASH_TEST_STATE, PYTHON (as ctest sets them).
set -euo pipefail

src=${VSTASH_SOURCE_DIR:?}
bin=${VSTASH_BIN:?}
python=${PYTHON:-/usr/bin/python3}
mkdir -p "${VSTASH_TEST_STATE:?}"
root=$(mktemp -d "$VSTASH_TEST_STATE/servers-test.XXXXXX")
chmod 755 "$root"  # as root, PostgreSQL runs as another user and must reach its data dir
export PYTHON=$python VSTASH_SOURCE_DIR=$src
pids=()
failures=0

cleanup() {
  for s in redis redis_cluster postgres qdrant_double pinecone_double; do
    for st in "$root"/state*; do
      [[ -d $st ]] && VSTASH_TEST_STATE=$st bash "$src/tests/servers/$s.sh" stop >/dev/null 2>&1 || true
    done
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for WHAT CMD...: poll CMD for 20 s at most
  local what=$1
  shift
  for _ in $(seq 1 200); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "timed out waiting for $what" >&2
  exit 1
}
refused() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }  # nothing listens on PORT
# The profile file names PORT (as `port: PORT` or in a URL) and never FOREIGN.
yaml_names() { grep -Eq "(port: |127[.]0[.]0[.]1:)$2\b" "$1" && ! grep -Eq "(port: |127[.]0[.]0[.]1:)$3\b" "$1"; }

# Foreign servers: a redis-server without a password, and plain listeners (python) elsewhere.
redis_port=$(free_port)
mkdir -p "$root/foreign"
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --dir "$root/foreign" --daemonize no \
  >"$root/foreign/redis.log" 2>&1 </dev/null &
pids+=($!)
wait_for "the foreign redis-server" redis-cli -p "$redis_port" ping
redis-cli -p "$redis_port" set foreign-key 1 >/dev/null
listen() {  # a foreign process that accepts and holds connections on a free port; prints the port
  "$python" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
time.sleep(3600)' >"$root/foreign/listen.$1" &
  pids+=($!)
  wait_for "a foreign listener" test -s "$root/foreign/listen.$1"
}
listen pg
listen qdrant
listen pinecone
pg_port=$(cat "$root/foreign/listen.pg")
qdrant_port=$(cat "$root/foreign/listen.qdrant")
pinecone_port=$(cat "$root/foreign/listen.pinecone")
export VSTASH_TEST_REDIS_PORT=$redis_port VSTASH_TEST_PG_PORT=$pg_port \
  VSTASH_TEST_QDRANT_PORT=$qdrant_port VSTASH_TEST_PINECONE_PORT=$pinecone_port

state=$root/state
mkdir -p "$state"
export VSTASH_TEST_STATE=$state
# check NAME SCRIPT YAML FOREIGN_PORT PROFILE: start, then the port is not the foreign one, the
# profile names the published port, and vstash reaches the server through the profile (stats
# exits 0, or 4 where the store has no index yet; a foreign listener would make it exit 3).
check() {
  local name=$1 script=$2 yaml=$3 foreign=$4 profile=$5 port
  if ! bash "$src/tests/servers/$script" start >"$root/$name.out" 2>&1; then
    fail "$script start with a foreign server on the configured port: $(tail -3 "$root/$name.out")"
    return
  fi
  port=$(cat "$state/$name.port" 2>/dev/null) || fail "$script start published no $state/$name.port"
  [[ $port != "$foreign" ]] || fail "$script started on the foreign port $foreign"
  yaml_names "$state/$yaml" "$port" "$foreign" || fail "$yaml does not name port $port alone"
  local rc=0
  VSTASH_NO_PROGRESS=1 timeout 60 "$bin" --config "$state/$yaml" --profile "$profile" --json stats \
    >"$root/$name.stats" 2>&1 || rc=$?
  [[ $rc -eq 0 || $rc -eq 4 ]] || fail "vstash stats through $yaml ($profile) exited $rc: $(cat "$root/$name.stats")"
}
check redis redis.sh redis.yaml "$redis_port" redis
check pg postgres.sh pgvector.yaml "$pg_port" pg
check qdrant qdrant_double.sh qdrant.yaml "$qdrant_port" qdrant
check pinecone pinecone_double.sh pinecone.yaml "$pinecone_port" pinecone

# The foreign redis-server was not touched, and stop leaves it alone.
VSTASH_TEST_STATE=$state bash "$src/tests/servers/redis.sh" stop
[[ $(redis-cli -p "$redis_port" dbsize) == 1 ]] || fail "the foreign redis-server's data changed"
redis-cli -p "$redis_port" ping >/dev/null 2>&1 || fail "the foreign redis-server is gone"

# The Redis Cluster needs twelve ports in a row: with a foreign listener on one of them,
# redis_cluster.sh starts its six nodes elsewhere, and its stop leaves the listener alone.
listen cluster
cluster_foreign=$(cat "$root/foreign/listen.cluster")
VSTASH_TEST_REDIS_CLUSTER_PORT=$((cluster_foreign - 3))
export VSTASH_TEST_REDIS_CLUSTER_PORT
if bash "$src/tests/servers/redis_cluster.sh" start >"$root/cluster.out" 2>&1; then
  base=$(cat "$state/redis-cluster.port")
  ((cluster_foreign < base || cluster_foreign > base + 11)) || fail "the cluster took the foreign port $cluster_foreign"
  yaml_names "$state/redis_cluster.yaml" "$base" "$cluster_foreign" || fail "redis_cluster.yaml does not name port $base alone"
  [[ $(grep -c "127.0.0.1:$((base + 5))\"" "$state/redis_cluster.yaml") == 1 ]] || fail "redis_cluster.yaml lacks node $((base + 5))"
  bash "$src/tests/servers/redis_cluster.sh" cli "$((base + 5))" cluster info | grep -q '^cluster_state:ok' ||
    fail "the cluster is not ok after start"
  bash "$src/tests/servers/redis_cluster.sh" stop
  for ((p = base; p < base + 6; p++)); do refused "$p" || fail "a cluster node still listens on $p after stop"; done
else
  fail "redis_cluster.sh start with a foreign listener on a configured port: $(tail -3 "$root/cluster.out")"
fi
refused "$cluster_foreign" && fail "redis_cluster.sh stop closed the foreign listener"

# Two runs at once with the same configured port: two servers of their own.
mkdir -p "$root/state1" "$root/state2"
export VSTASH_TEST_REDIS_PORT=$(free_port)
VSTASH_TEST_STATE=$root/state1 bash "$src/tests/servers/redis.sh" start >"$root/r1.out" 2>&1 &
r1=$!
VSTASH_TEST_STATE=$root/state2 bash "$src/tests/servers/redis.sh" start >"$root/r2.out" 2>&1 &
r2=$!
wait "$r1" || fail "concurrent redis.sh start 1: $(tail -3 "$root/r1.out")"
wait "$r2" || fail "concurrent redis.sh start 2: $(tail -3 "$root/r2.out")"
if [[ -f $root/state1/redis.port && -f $root/state2/redis.port ]]; then
  [[ $(cat "$root/state1/redis.port") != $(cat "$root/state2/redis.port") ]] || fail "two runs share one redis port"
  for st in "$root/state1" "$root/state2"; do
    VSTASH_TEST_STATE=$st bash "$src/tests/servers/redis.sh" cli set mine "$st" >/dev/null
  done
  [[ $(VSTASH_TEST_STATE=$root/state1 bash "$src/tests/servers/redis.sh" cli get mine) == "$root/state1" ]] ||
    fail "run 1's server holds another run's data"
fi

if ((failures)); then
  echo "servers_test: $failures failure(s)" >&2
  exit 1
fi
echo "servers_test: every start script used a server of its own"
