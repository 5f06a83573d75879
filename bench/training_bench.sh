#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Training batch throughput (issue 7 item 8): one shuffled epoch streamed from the local store
# by `vstash batch --stream` with 0, 1, 2 and 4 prefetching workers, side by side with numpy
# loading the same shuffled batches (same permutation) from an NPY file opened with
# mmap_mode="r". Prints batches/s and rows/s. Timings include process start-up for vstash.
#
# Then the server rows (issue 17): one shuffled epoch from Redis, PostgreSQL + pgvector and
# the Qdrant and Pinecone protocol doubles, each on a private server started here
# (tests/servers/*.sh, own state dir and ports) and stopped at the end:
# `vstash batch --stream -o - >/dev/null` with --workers 0 and 4 beside the script a user
# would write instead (bench/training_peers.py: redis-py + hiredis, one key per row, one MGET
# per batch; psycopg3, WHERE idx = ANY(%s) per batch, binary; for Qdrant and Pinecone a
# Python requests loop with the same batching: POST /points {ids} and GET /vectors/fetch, as
# the official JS clients are not installed), all whole processes, TRAINING_BENCH_ROUNDS
# (default 3) alternating rounds, medians, and the ratio of vstash's rows/s to the peer's.
# The doubles are single-threaded Python servers: their rows use the first
# TRAINING_BENCH_REST_ROWS rows (default 10000). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset.
#
# Usage: bench/training_bench.sh [ROWS] [DIM] [BATCH]     (default 100000 128 256)
#   VSTASH_BIN=path/to/vstash (default: build/vstash), PYTHON=/usr/bin/python3
#   TRAINING_BENCH_ONLY=local|servers   one part only; TRAINING_BENCH_PORT_BASE (default 57460:
#   redis +0, postgres +1, qdrant double +2, pinecone double +3)
#   TRAINING_BENCH_STORES (default "redis pg qdrant pinecone")
set -euo pipefail
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
ONLY=${TRAINING_BENCH_ONLY:-}
ROWS=${1:-100000}
DIM=${2:-128}
BATCH=${3:-256}
HERE=$(cd "$(dirname "$0")" && pwd)
VSTASH_BIN=${VSTASH_BIN:-$HERE/../build/vstash}
PYTHON=${PYTHON:-/usr/bin/python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vstash-training-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
CONFIG=$WORK/vstash.yaml
printf 'default: local\nprofiles:\n  local:\n    type: local\n    path: %s/store.db\n' "$WORK" >"$CONFIG"
V=("$VSTASH_BIN" --config "$CONFIG" --profile local --no-progress --quiet --dataset bench)

"$PYTHON" - "$WORK" "$ROWS" "$DIM" <<'PY'
import sys, numpy as np
work, rows, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
np.save(f"{work}/data.npy", rng.standard_normal((rows, dim), dtype=np.float32))
np.save(f"{work}/labels.npy", np.arange(rows, dtype=np.int64))
PY
[[ $ONLY == servers ]] || "${V[@]}" ingest "$WORK/data.npy" --labels "$WORK/labels.npy" --metric euclidean >/dev/null
BATCHES=$(( (ROWS + BATCH - 1) / BATCH ))
if [[ $ONLY != servers ]]; then
echo "training bench: ${ROWS} rows x ${DIM} float32 (+ int64 labels), batch ${BATCH}, ${BATCHES} shuffled batches/epoch"
printf '%-40s %10s %12s %12s\n' "loader" "seconds" "batches/s" "rows/s"

report() {  # name seconds
  "$PYTHON" -c "import sys; n, s = sys.argv[1], float(sys.argv[2]); b, r = $BATCHES, $ROWS
print(f'{n:<40} {s:10.3f} {b / s:12.1f} {r / s:12.0f}')" "$1" "$2"
}

for W in 0 1 2 4; do
  START=$(date +%s.%N)
  "${V[@]}" batch --stream --shuffle --seed 1 --epoch 0 --size "$BATCH" --workers "$W" -o - >/dev/null
  END=$(date +%s.%N)
  report "vstash batch --stream --workers $W" "$(echo "$END - $START" | bc)"
done

# numpy: the same permutation (sharding.hpp's recipe, vectorised bookkeeping aside), then
# data[idx] / labels[idx] from the memory-mapped NPY for every batch.
"$PYTHON" - "$WORK" "$BATCH" <<'PY'
import sys, time, numpy as np
work, batch = sys.argv[1], int(sys.argv[2])
M = (1 << 64) - 1
def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)
data = np.load(f"{work}/data.npy", mmap_mode="r")
labels = np.load(f"{work}/labels.npy", mmap_mode="r")
n = data.shape[0]
state, keys = (1 ^ mix(0)) & M, []
for _ in range(4):
    state = (state + 0x9E3779B97F4A7C15) & M
    keys.append(np.uint64(mix(state)))
h = 1
while (1 << (2 * h)) < n:
    h += 1
def vmix(z):  # mix() on uint64 arrays (wrapping multiplies)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))
H, MASK = np.uint64(h), np.uint64((1 << h) - 1)
with np.errstate(over="ignore"):
    x = np.arange(n, dtype=np.uint64)
    todo = np.ones(n, dtype=bool)
    while todo.any():  # cycle walking, vectorised over the positions still >= n
        y = x[todo]
        left, right = y >> H, y & MASK
        for k in keys:
            left, right = right, left ^ (vmix(right ^ k) & MASK)
        x[todo] = (left << H) | right
        todo = x >= np.uint64(n)
order = x.astype(np.int64)
start = time.perf_counter()
total = 0
for b in range(0, n, batch):
    idx = order[b:b + batch]
    x = np.ascontiguousarray(data[idx])
    y = np.ascontiguousarray(labels[idx])
    total += x.shape[0]
secs = time.perf_counter() - start
assert total == n
batches = (n + batch - 1) // batch
print(f"{'numpy mmap_mode=r (same order)':<40} {secs:10.3f} {batches / secs:12.1f} {n / secs:12.0f}")
PY
fi

[[ $ONLY == local ]] && exit 0
# --- server rows ------------------------------------------------------------------------
ROUNDS=${TRAINING_BENCH_ROUNDS:-3}
BASE=${TRAINING_BENCH_PORT_BASE:-57460}
SERVERS=$HERE/../tests/servers
STORES=${TRAINING_BENCH_STORES:-redis pg qdrant pinecone}
REST_ROWS=$(( ${TRAINING_BENCH_REST_ROWS:-10000} < ROWS ? ${TRAINING_BENCH_REST_ROWS:-10000} : ROWS ))
export VSTASH_TEST_STATE=$WORK/servers VSTASH_TEST_REDIS_PORT=$BASE VSTASH_TEST_PG_PORT=$((BASE + 1))
export VSTASH_TEST_QDRANT_PORT=$((BASE + 2)) VSTASH_TEST_PINECONE_PORT=$((BASE + 3)) VSTASH_SOURCE_DIR=$HERE/.. PYTHON
mkdir -p "$VSTASH_TEST_STATE"
chmod 755 "$WORK" "$VSTASH_TEST_STATE"  # PostgreSQL runs as its own user when we are root
declare -A SERVER_OF=([redis]=redis [pg]=postgres [qdrant]=qdrant_double [pinecone]=pinecone_double)
stop_servers() {
  for STORE in $STORES; do bash "$SERVERS/${SERVER_OF[$STORE]}.sh" stop >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap stop_servers EXIT
for STORE in $STORES; do bash "$SERVERS/${SERVER_OF[$STORE]}.sh" start >/dev/null; done
"$PYTHON" -c "import sys, numpy as np; np.save(sys.argv[1], np.load(sys.argv[2])[:int(sys.argv[4])]); \
np.save(sys.argv[3], np.arange(int(sys.argv[4]), dtype=np.int64))" \
  "$WORK/rest_data.npy" "$WORK/data.npy" "$WORK/rest_labels.npy" "$REST_ROWS"
profile_key() {  # file key: the first profile's value of key
  sed -n "s/^ *$2: //p" "$VSTASH_TEST_STATE/$1" | head -1
}
PEERS=$HERE/training_peers.py

seconds() {  # command...: wall seconds of the whole process
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

echo
echo "server rows: ${ROWS} x ${DIM} float32 (+ int64 labels), batch ${BATCH}, one shuffled epoch, whole process,"
echo "${ROUNDS} alternating rounds, medians (indicative on a shared machine)"
printf '%-52s %10s %12s %8s\n' "loader" "seconds" "rows/s" "x peer"
for STORE in $STORES; do
  DATA=$WORK/data.npy LABELS=$WORK/labels.npy N=$ROWS
  case $STORE in
    redis)
      SV=("$VSTASH_BIN" --config "$VSTASH_TEST_STATE/redis.yaml" --profile redis)
      TARGET=("$(cat "$VSTASH_TEST_STATE/redis.port")" "$(profile_key redis.yaml password)")
      PEER_NAME="redis-py + hiredis, MGET per batch" ;;
    pg)
      SV=("$VSTASH_BIN" --config "$VSTASH_TEST_STATE/pgvector.yaml" --profile pg)
      TARGET=("host=127.0.0.1 port=$(cat "$VSTASH_TEST_STATE/pg.port") dbname=vstash_test user=vstash password=$(profile_key pgvector.yaml password)")
      PEER_NAME="psycopg3, WHERE idx = ANY(%s), binary" ;;
    qdrant | pinecone)
      DATA=$WORK/rest_data.npy LABELS=$WORK/rest_labels.npy N=$REST_ROWS
      SV=("$VSTASH_BIN" --config "$VSTASH_TEST_STATE/$STORE.yaml" --profile "$STORE")
      [[ $STORE == qdrant ]] && URL="http://127.0.0.1:$(profile_key qdrant.yaml port)" || URL=$(profile_key pinecone.yaml control_host)
      TARGET=("$URL" "$(profile_key "$STORE.yaml" api_key)")
      [[ $STORE == qdrant ]] && PEER_NAME="requests, POST /points {ids} per batch" || PEER_NAME="requests, GET /vectors/fetch per batch" ;;
  esac
  SV+=(--no-progress --quiet --dataset bench)
  PEER=("$PYTHON" "$PEERS" "$STORE" epoch "${TARGET[@]}" "$DATA" "$LABELS" "$BATCH")
  "$PYTHON" "$PEERS" "$STORE" load "${TARGET[@]}" "$DATA" "$LABELS" "$BATCH"
  "${SV[@]}" ingest "$DATA" --labels "$LABELS" --metric euclidean >/dev/null
  W0=() W4=() P=()
  for ((r = 0; r < ROUNDS; r++)); do
    W0+=("$(seconds "${SV[@]}" batch --stream --shuffle --seed 1 --size "$BATCH" --workers 0 -o -)")
    W4+=("$(seconds "${SV[@]}" batch --stream --shuffle --seed 1 --size "$BATCH" --workers 4 -o -)")
    P+=("$(seconds "${PEER[@]}")")
  done
  "$PYTHON" - "$STORE ($N rows)" "$N" "$PEER_NAME" "${W0[*]}" "${W4[*]}" "${P[*]}" <<'PY'
import statistics, sys
store, rows, peer_name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
w0, w4, peer = ([float(v) for v in a.split()] for a in sys.argv[4:7])
p = statistics.median(peer)
for name, times in ((f"{store}: vstash --workers 0", w0), (f"{store}: vstash --workers 4", w4), (f"{store}: {peer_name}", peer)):
    m = statistics.median(times)
    print(f"{name:<52} {m:10.3f} {rows / m:12.0f} {p / m:8.2f}")
PY
done
