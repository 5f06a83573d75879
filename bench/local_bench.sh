#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Local-store benchmark (issue "Foundation", item 11). Prints, for 100k x 128 and 1M x 128
# float32 rows: ingest rows/s and MB/s, shuffled-batch load time, and query latency; then
# the peak resident memory of ingesting a 2 GB file (target: under 300 MB).
#   bench/local_bench.sh [BUILD_DIR]        (default build/release; builds it if missing)
# Data is generated with numpy into build/bench-local and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-$root/build/release}
if [[ ! -x $build/vstash ]]; then
  scripts/install-deps.sh --demo
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DVSTASH_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j"$(nproc)" --target vstash >/dev/null
fi
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
vstash=$build/vstash
work=$root/build/bench-local
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
export VSTASH_CONFIG=$work/vstash.yaml
printf 'profiles:\n  local:\n    type: local\n    path: %s/store.db\n' "$work" > "$VSTASH_CONFIG"

gen() {  # gen ROWS DIM FILE
  /usr/bin/python3 - "$@" <<'PY'
import sys, numpy as np
rows, dim, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
rng = np.random.default_rng(1)
step = 262144
for i in range(0, rows, step):
    n = min(step, rows - i)
    out[i:i + n] = rng.standard_normal((n, dim), dtype=np.float32)
out.flush()
PY
}
now() { date +%s.%N; }

printf '%-10s %12s %10s %18s %16s\n' rows ingest_rows/s MB/s "batch256 shuffled" "query k=10 mean"
for rows in 100000 1000000; do
  gen "$rows" 128 "$work/d.npy"
  gen 100 128 "$work/q.npy"
  ds=bench$rows
  t0=$(now)
  "$vstash" ingest "$work/d.npy" --dataset "$ds" --no-progress --json >/dev/null
  t1=$(now)
  secs=$(echo "$t1 - $t0" | bc -l)
  mb=$(echo "$rows * 128 * 4 / 1048576" | bc -l)
  # 20 shuffled batches of 256 from different seeds: mean milliseconds per batch.
  t0=$(now)
  for s in $(seq 1 20); do
    "$vstash" batch --dataset "$ds" --size 256 --shuffle --seed "$s" -o "$work/b.npy" >/dev/null
  done
  t1=$(now)
  batch_ms=$(echo "($t1 - $t0) * 1000 / 20" | bc -l)
  # 100 queries streamed in one process; per-query latency from the process total.
  t0=$(now)
  "$vstash" query --dataset "$ds" --queries "$work/q.npy" -k 10 >/dev/null
  t1=$(now)
  q_ms=$(echo "($t1 - $t0) * 1000 / 100" | bc -l)
  printf '%-10s %12.0f %10.1f %15.1f ms %13.1f ms\n' "$rows" "$(echo "$rows / $secs" | bc -l)" \
    "$(echo "$mb / $secs" | bc -l)" "$batch_ms" "$q_ms"
  rm -f "$work/d.npy"
done

# Peak memory of ingesting a 2 GB file (4M x 128 float32): the reader streams row blocks.
gen 4194304 128 "$work/big.npy"
/usr/bin/time -f '%M' -o "$work/rss" "$vstash" ingest "$work/big.npy" --dataset big --no-progress >/dev/null
rss_kb=$(tail -n 1 "$work/rss")
printf '\ningest of a %s MB file: peak RSS %.0f MB (target < 300 MB)\n' \
  "$(( $(stat -c %s "$work/big.npy") / 1048576 ))" "$(echo "$rss_kb / 1024" | bc -l)"
