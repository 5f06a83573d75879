#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The strict Pinecone protocol double (tests/doubles/pinecone_double.py) for the tests and the
# benchmark.
#   pinecone_double.sh start   (re)start the double on 127.0.0.1:$VSTASH_TEST_PINECONE_PORT, or on a
#                              port the kernel picks when that one is taken (published in
#                              $VSTASH_TEST_STATE/pinecone.port), state and log in
#                              $VSTASH_TEST_STATE/pinecone, poll until it answers, and
#                              write $VSTASH_TEST_STATE/pinecone.yaml (profile "pinecone")
#   pinecone_double.sh stop    stop it (by the pid in its pidfile)
# Writes become visible $VSTASH_TEST_PINECONE_DELAY_MS (default 30) after they are acknowledged,
# so everything that reads back its own writes goes through the backend's `wait` polling.
set -euo pipefail

state=${VSTASH_TEST_STATE:?VSTASH_TEST_STATE must be set}
python=${PYTHON:-/usr/bin/python3}
src=${VSTASH_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$src/tests/servers/ports.sh"
port=$(published_port pinecone "${VSTASH_TEST_PINECONE_PORT:-56380}")
dir=$state/pinecone
pidfile=$dir/double.pid
log=$dir/double.log
delay_ms=${VSTASH_TEST_PINECONE_DELAY_MS:-30}
# A recognisable fake key, so tests can assert that it never appears in any output.
api_key=pcsk-vstash-double-9f27c1e4-not-a-real-key

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
# The double's health hook answers (asked with python: no extra package needed).
healthy() {
  "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$port/__double__/health" >/dev/null 2>&1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

start() {
  stop
  rm -rf "$dir" "$state/pinecone.yaml" "$state/pinecone.port"
  mkdir -p "$dir"
  start_double "${VSTASH_TEST_PINECONE_PORT:-56380}" "$log" "$pidfile" "$dir/port" \
    "$python" "$src/tests/doubles/pinecone_double.py" --host 127.0.0.1 \
    --api-key "$api_key" --consistency-delay-ms "$delay_ms" --index-ready-ms 300 \
    --no-log-bodies || exit 1
  # Bounded wait: 30 s at most.
  for _ in $(seq 1 300); do
    if healthy; then
      break
    fi
    running || { echo "pinecone_double.sh: the double exited" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  publish_port pinecone "$port"
  healthy ||
    { echo "pinecone_double.sh: double not answering on 127.0.0.1:$port after 30 s" >&2; cat "$log" >&2; exit 1; }
  cat >"$state/pinecone.yaml" <<YAML
# Written by tests/servers/pinecone_double.sh for the double on 127.0.0.1:$port.
# One index per (dimension, metric): the contract suite uses many shapes and all three metrics,
# and a Pinecone index has one dimension and one metric. The backend creates the indexes on
# demand (cloud/region given) and polls until ready; \`host\` overrides the data-plane host that
# describe returns ({index} is the index name). \`wait: true\`: every write returns only once the
# double reports it indexed, so the suite's read-after-write holds despite the ${delay_ms} ms delay.
profiles:
  pinecone:
    type: pinecone
    api_key: $api_key
    control_host: http://127.0.0.1:$port
    host: http://127.0.0.1:$port/index/{index}
    index_name: vstash-ct-{dimension}-{metric}
    dimension: 8
    metric: cosine
    cloud: aws
    region: us-east-1
    wait: true
    parallel: 4
    timeout_ms: 60000
YAML
  echo "pinecone_double.sh: Pinecone double on 127.0.0.1:$port (consistency delay ${delay_ms} ms)"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: pinecone_double.sh start|stop" >&2; exit 2 ;;
esac
