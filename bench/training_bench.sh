#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Training batch throughput (issue 7 item 8): one shuffled epoch streamed from the local store
# by `vstash batch --stream` with 0, 1, 2 and 4 prefetching workers, side by side with numpy
# loading the same shuffled batches (same permutation) from an NPY file opened with
# mmap_mode="r". Prints batches/s and rows/s. Timings include process start-up for vstash.
#
# Usage: bench/training_bench.sh [ROWS] [DIM] [BATCH]     (default 100000 128 256)
#   VSTASH_BIN=path/to/vstash (default: build/vstash), PYTHON=/usr/bin/python3
set -euo pipefail
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
"${V[@]}" ingest "$WORK/data.npy" --labels "$WORK/labels.npy" --metric euclidean >/dev/null
BATCHES=$(( (ROWS + BATCH - 1) / BATCH ))
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
