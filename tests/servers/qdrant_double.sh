#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Qdrant protocol double (tests/doubles/qdrant_double.py) for the tests and the benchmark.
#   qdrant_double.sh start   start it on 127.0.0.1:$VSTASH_TEST_QDRANT_PORT, or on a port the kernel
#                            picks when that one is taken (published in
#                            $VSTASH_TEST_STATE/qdrant.port; state, log and pidfile in
#                            $VSTASH_TEST_STATE/qdrant), wait until GET / answers, and write
#                            $VSTASH_TEST_STATE/qdrant.yaml with the profiles
#                              qdrant         api key set (the contract suite's profile)
#                              qdrant_badkey  the same server with a wrong api key
#                              qdrant_nokey   the same server without an api key
#   qdrant_double.sh stop    kill the double started by start (by its pidfile)
# start is idempotent: a double left running from an earlier start is stopped first.
set -euo pipefail

state=${VSTASH_TEST_STATE:?VSTASH_TEST_STATE must be set}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/ports.sh"
python=${PYTHON:-/usr/bin/python3}
dir=$state/qdrant
pidfile=$dir/qdrant_double.pid
api_key=vstash-qdrant-test-key-5Zr

stop() {
  if [[ -f $pidfile ]]; then
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  fi
}

start() {
  stop
  rm -rf "$dir" "$state/qdrant.yaml" "$state/qdrant.port"
  mkdir -p "$dir"
  local port
  start_double "${VSTASH_TEST_QDRANT_PORT:-56333}" "$dir/double.log" "$pidfile" "$dir/port" \
    "$python" "$here/../doubles/qdrant_double.py" --api-key "$api_key" || exit 1
  # Bounded wait: 20 s at most.
  for _ in $(seq 1 200); do
    if curl -sf --max-time 2 "http://127.0.0.1:$port/" >/dev/null 2>&1; then
      break
    fi
    sleep 0.1
  done
  curl -sf --max-time 2 "http://127.0.0.1:$port/" >/dev/null || { echo "qdrant_double.sh: not ready after 20 s" >&2; exit 1; }
  publish_port qdrant "$port"
  cat >"$state/qdrant.yaml" <<YAML
# Written by tests/servers/qdrant_double.sh for the Qdrant double on 127.0.0.1:$port.
profiles:
  qdrant:
    type: qdrant
    host: 127.0.0.1
    port: $port
    api_key: $api_key
    collection_name: vstash
    timeout_ms: 60000
    parallel: 4
  qdrant_badkey:
    type: qdrant
    host: 127.0.0.1
    port: $port
    api_key: wrong-key-for-tests
    collection_name: vstash
    max_attempts: 2
  qdrant_nokey:
    type: qdrant
    host: 127.0.0.1
    port: $port
    collection_name: vstash
    max_attempts: 2
YAML
  echo "qdrant_double.sh: qdrant double on 127.0.0.1:$port"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: qdrant_double.sh start|stop" >&2; exit 2 ;;
esac
