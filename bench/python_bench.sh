#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Python API's training throughput (issue 19 targets), side by side in one run:
#   1. a Python loop over one shuffled epoch from the local store through vstash's DataLoader
#      (0, 2 and 4 C++ workers) vs numpy memmap + fancy indexing of the same NPY file with the
#      same permutation (sorted within each batch, as a page-friendly reader would), in 5
#      alternating rounds, medians;
#   2. the per-call time of load_training_batch(256 x DIM) from the same store, shuffled and
#      in order, vs reading one batch through the memmap.
# Usage: bench/python_bench.sh [ROWS] [DIM] [BATCH]   (default 1000000 128 256)
#   VSTASH_PYTHON_DIR=<build>/python (default: build/dev/python), PYTHON=/usr/bin/python3
set -euo pipefail
ROWS=${1:-1000000}
DIM=${2:-128}
BATCH=${3:-256}
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
export PYTHONPATH=${VSTASH_PYTHON_DIR:-$HERE/../build/dev/python}
# OpenBLAS tuning variables from the environment would skew numpy's side only.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vstash-python-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" - "$WORK" "$ROWS" "$DIM" "$BATCH" <<'PY'
import sys, time
import numpy as np
import vstash

work, rows, dim, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ROUNDS = 5
rng = np.random.default_rng(0)
data = rng.standard_normal((rows, dim), dtype=np.float32)
labels = np.arange(rows, dtype=np.int64)
np.save(f"{work}/data.npy", data)
np.save(f"{work}/labels.npy", labels)
store = vstash.open({"type": "local", "path": f"{work}/store.db"})
t = time.perf_counter()
store.store_training_data("bench", data, labels)
print(f"python bench: {rows} x {dim} float32 (+ int64 labels), batch {batch}; "
      f"store_training_data {rows / (time.perf_counter() - t):,.0f} rows/s")
del data, labels
print(f"{'epoch loop (shuffled)':<44} {'seconds':>9} {'rows/s':>12}")

def report(name, seconds, n=rows):
    print(f"{name:<44} {seconds:9.3f} {n / seconds:12,.0f}", flush=True)

mm_data = np.load(f"{work}/data.npy", mmap_mode="r")
mm_labels = np.load(f"{work}/labels.npy", mmap_mode="r")
order = np.random.default_rng(1).permutation(rows)

def memmap_epoch():
    total = 0
    for i in range(0, rows, batch):
        idx = np.sort(order[i:i + batch])
        x, y = mm_data[idx], mm_labels[idx]
        total += len(y)
    assert total == rows

def vstash_epoch(workers):
    def run():
        loader = store.create_data_loader("bench", batch_size=batch, shuffle=True, num_workers=workers, seed=1)
        total = 0
        for x, y in loader:
            total += len(y)
        assert total == rows
    return run

# Alternating rounds (the first warms the page cache for both files), medians reported.
contenders = [("numpy memmap + fancy indexing", memmap_epoch)] + [
    (f"vstash DataLoader, {w} workers", vstash_epoch(w)) for w in (0, 2, 4)]
times = {name: [] for name, _ in contenders}
for _ in range(ROUNDS):
    for name, fn in contenders:
        t = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - t)
for name, _ in contenders:
    report(name + f" (median of {ROUNDS})", sorted(times[name])[ROUNDS // 2])
peer = sorted(times[contenders[0][0]])[ROUNDS // 2]
best = min(sorted(times[n])[ROUNDS // 2] for n, _ in contenders[1:])
print(f"{'best vstash loader vs memmap (rows/s ratio)':<44} {peer / best:9.2f}x", flush=True)

print(f"{'one batch of ' + str(batch) + ' x ' + str(dim):<44} {'calls':>9} {'ms/call':>12}")
def per_call(name, fn, calls=2000):
    fn()
    t = time.perf_counter()
    for i in range(calls):
        fn(i)
    print(f"{name:<44} {calls:9d} {(time.perf_counter() - t) * 1000 / calls:12.3f}", flush=True)
per_call("load_training_batch, in order", lambda i=0: store.load_training_batch("bench", batch, False, (i * 7919 * batch) % rows))
per_call("load_training_batch, shuffled", lambda i=0: store.load_training_batch("bench", batch, True, (i * 7919 * batch) % rows), 200)
per_call("numpy memmap slice, in order", lambda i=0: np.array(mm_data[(i * 7919 * batch) % rows:][:batch]))
PY
