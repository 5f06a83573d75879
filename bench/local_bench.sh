#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Local-store benchmark (issue "Foundation", item 11). Prints, for 100k x 128 and 1M x 128
# float32 rows: ingest rows/s and MB/s, shuffled-batch load time, and query latency; exact
# top-10 of 1,000 queries beside FAISS, and Redis's 100 queries (exact_search_bench); the
# HNSW index's build time, queries/s and recall@10 beside the exact scan and FAISS (hnsw_bench); export
# MB/s and peak RSS beside dd and numpy (export_bench); then the peak resident memory of ingesting a 2 GB file (target: under 300 MB).
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
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Exact top-10 of 1,000 queries (issue 16, line 2): `vstash query --queries` (whole process,
# dataset already ingested) beside FAISS IndexFlat (bench/exact_peer.py, from loading the NPY
# files to the results), alternating rounds, medians, and whether the top-10 ids agree. Then
# Redis: 100 queries over 100k x 128 on a private redis-server.
#   LOCAL_BENCH_ONLY=exact bench/local_bench.sh    runs only this part
#   LOCAL_BENCH_EXACT_ROWS="100000 1000000"        the dataset sizes (default both)
exact_search_bench() {
  dpkg -s python3-faiss >/dev/null 2>&1 || apt-get install -y -qq python3-faiss >/dev/null
  # This machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow a current OpenBLAS; unset for both sides.
  unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
  echo "exact search: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for vstash and FAISS alike;" \
    "OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset}, $(nproc) cores, 3 alternating rounds, medians"
  printf '%-9s %-10s %12s %12s %8s  %s\n' rows metric "vstash s" "faiss s" ratio "top-10 ids vs faiss"
  gen 1000 128 "$work/q.npy"
  /usr/bin/python3 -c "import numpy as np; q=np.load('$work/q.npy'); np.save('$work/q.npy', q + np.float32(0.5))"
  for rows in ${LOCAL_BENCH_EXACT_ROWS:-100000 1000000}; do
    gen "$rows" 128 "$work/x.npy"
    for metric in euclidean cosine dot; do
      ds=exact_${metric}_$rows
      "$vstash" ingest "$work/x.npy" --dataset "$ds" --metric "$metric" --no-progress --no-index >/dev/null
      local vs=() fs=()
      for _ in 1 2 3; do
        t0=$(now)
        "$vstash" query --dataset "$ds" --queries "$work/q.npy" -k 10 --no-metadata --exact >"$work/hits.ndjson"
        t1=$(now)
        vs+=("$(echo "$t1 - $t0" | bc -l)")
        fs+=("$(/usr/bin/python3 "$root/bench/exact_peer.py" "$work/x.npy" "$work/q.npy" "$metric" 10 "$work/peer.npy")")
      done
      v=$(median "${vs[@]}")
      f=$(median "${fs[@]}")
      printf '%-9s %-10s %12.2f %12.2f %8.2f  %s\n' "$rows" "$metric" "$v" "$f" "$(echo "$v / $f" | bc -l)" \
        "$(/usr/bin/python3 "$root/bench/exact_compare.py" "$work/hits.ndjson" "$work/peer.npy" "$work/x.npy" "$work/q.npy" "$metric")"
      "$vstash" delete --dataset "$ds" --dataset-all --yes >/dev/null 2>&1 || true
    done
  done

  # Redis: 100 queries, 100k x 128, euclidean, one process (before this change: 34 s, issue 16).
  if command -v redis-server >/dev/null; then
    local port
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --bind 127.0.0.1 --port "$port" --dir "$work" --save "" --appendonly no --daemonize yes \
      --pidfile "$work/redis.pid" >/dev/null
    for _ in $(seq 1 100); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    printf 'profiles:\n  redis:\n    type: redis\n    host: 127.0.0.1\n    port: %s\n' "$port" >"$work/redis.yaml"
    gen 100000 128 "$work/x.npy"
    /usr/bin/python3 -c "import numpy as np; np.save('$work/q100.npy', np.load('$work/q.npy')[:100])"
    "$vstash" --config "$work/redis.yaml" --profile redis ingest "$work/x.npy" --dataset rq --metric euclidean \
      --no-progress >/dev/null
    local rs=()
    for _ in 1 2 3; do
      t0=$(now)
      "$vstash" --config "$work/redis.yaml" --profile redis query --dataset rq --queries "$work/q100.npy" -k 10 \
        --no-metadata >/dev/null
      t1=$(now)
      rs+=("$(echo "$t1 - $t0" | bc -l)")
    done
    printf 'redis: 100 queries over 100k x 128, top-10 euclidean: %.2f s (median of 3; 34 s before)\n' "$(median "${rs[@]}")"
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  fi
  rm -f "$work/x.npy"
}
if [[ ${LOCAL_BENCH_ONLY:-} == exact ]]; then
  exact_search_bench
  exit 0
fi

# HNSW index (issue 16, line 3): bench/hnsw_bench.sh, the index beside FAISS IndexHNSWFlat
# with the same parameters on clustered (the target) and random normal (the worst case)
# 1M x 128 rows, with its variables (HNSW_BENCH_ROWS, HNSW_BENCH_EF, ...).
#   LOCAL_BENCH_ONLY=hnsw bench/local_bench.sh
hnsw_bench() {
  bash "$root/bench/hnsw_bench.sh" "$vstash"
}
if [[ ${LOCAL_BENCH_ONLY:-} == hnsw ]]; then
  hnsw_bench
  exit 0
fi

# Export (issue 16, line 5): `vstash export -o out.npy` of ROWS x 128 float32 (whole process,
# dataset already ingested, output fsync'd) beside `dd conv=fsync` copying the NPY file and
# numpy (np.load of the file, np.save, fsync: whole process), 3 alternating rounds, medians
# of MB/s (of the array's bytes) and peak RSS (/usr/bin/time %M; mapped files count too).
#   LOCAL_BENCH_ONLY=export bench/local_bench.sh
#   LOCAL_BENCH_EXPORT_ROWS=1000000                the dataset size (default 1M)
export_bench() {
  unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
  local rows=${LOCAL_BENCH_EXPORT_ROWS:-1000000} ds=exportbench
  echo "export: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for every side; $(nproc) cores, 3 alternating" \
    "rounds, medians; $rows x 128 float32"
  gen "$rows" 128 "$work/x.npy"
  "$vstash" ingest "$work/x.npy" --dataset "$ds" --no-progress --no-index --json >/dev/null
  local mb
  mb=$(echo "$rows * 128 * 4 / 1048576" | bc -l)
  local v_s=() v_m=() d_s=() d_m=() n_s=() n_m=() t0 t1
  timed() {  # timed SECONDS_VAR RSS_VAR COMMAND...: whole-process seconds and peak RSS in MB
    local -n secs_out=$1 rss_out=$2
    shift 2
    sync
    t0=$(now)
    /usr/bin/time -f '%M' -o "$work/rss" "$@" >/dev/null
    t1=$(now)
    secs_out+=("$(echo "$t1 - $t0" | bc -l)")
    rss_out+=("$(echo "$(tail -n 1 "$work/rss") / 1024" | bc -l)")
  }
  for round in 1 2 3; do
    timed v_s v_m "$vstash" export --dataset "$ds" -o "$work/out.npy" --no-progress
    rm -f "$work"/out.*npy "$work"/out.metadata.jsonl
    timed d_s d_m dd if="$work/x.npy" of="$work/copy.npy" bs=4M conv=fsync status=none
    rm -f "$work/copy.npy"
    timed n_s n_m /usr/bin/python3 -c '
import os, sys, numpy as np
a = np.load(sys.argv[1])
with open(sys.argv[2], "wb") as f:
    np.save(f, a)
    f.flush()
    os.fsync(f.fileno())' "$work/x.npy" "$work/copy.npy"
    rm -f "$work/copy.npy"
  done
  printf '%-28s %10s %14s\n' "export $rows x 128" MB/s "peak RSS MB"
  printf '%-28s %10.1f %14.0f\n' "vstash export -o out.npy" "$(echo "$mb / $(median "${v_s[@]}")" | bc -l)" \
    "$(median "${v_m[@]}")"
  printf '%-28s %10.1f %14.0f\n' "dd conv=fsync (file copy)" "$(echo "$mb / $(median "${d_s[@]}")" | bc -l)" \
    "$(median "${d_m[@]}")"
  printf '%-28s %10.1f %14.0f\n' "numpy np.load + np.save" "$(echo "$mb / $(median "${n_s[@]}")" | bc -l)" \
    "$(median "${n_m[@]}")"
  "$vstash" delete --dataset "$ds" --dataset-all --yes >/dev/null 2>&1 || true
  rm -f "$work/x.npy"
}
if [[ ${LOCAL_BENCH_ONLY:-} == export ]]; then
  export_bench
  exit 0
fi

# Segments (issue 16, lines 1, 4, 6), each beside its peer in the same run, alternating
# rounds, medians, whole processes: ingest of 1M x 128 NPY vs `dd conv=fsync` of the same
# file to the same disk (target >= 80%); one query over 1M x 128 (target < 100 ms); one
# shuffled batch of 256 from 1M rows (target < 20 ms); one shuffled epoch of 100k and 1M
# rows, batch 256, `batch --stream -o - > /dev/null` vs numpy memmap + fancy indexing (its
# loop only, as bench/training_bench.sh times it); peak RSS of ingesting a 2 GB file.
#   LOCAL_BENCH_ONLY=segments bench/local_bench.sh
#   LOCAL_BENCH_SEGMENT_ROUNDS=3
segments_bench() {
  local rounds=${LOCAL_BENCH_SEGMENT_ROUNDS:-3}
  echo "segments: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for vstash and its peers; $rounds alternating rounds, medians"
  local d=$work/seg.npy q=$work/seg_q.npy
  gen 1000000 128 "$d"
  gen 1 128 "$q"
  local -a ing=() dd_s=() one=() b256=()
  for r in $(seq 1 "$rounds"); do
    rm -rf "$work/store.db" "$work/store.db-wal" "$work/store.db-shm" "$work/store.db.segments" "$work/copy.npy"
    sync
    local t0 t1
    t0=$(now); dd if="$d" of="$work/copy.npy" bs=8M conv=fsync status=none; t1=$(now)
    dd_s+=("$(echo "$t1 - $t0" | bc -l)")
    rm -f "$work/copy.npy"; sync
    t0=$(now); env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$vstash" ingest "$d" --dataset seg --no-progress --no-index >/dev/null; t1=$(now)
    ing+=("$(echo "$t1 - $t0" | bc -l)")
  done
  # The two latencies: LOCAL_BENCH_LATENCY_ROUNDS (default 11) alternating rounds of each
  # whole process, medians; the batch (written atomically: the data and ids files and their
  # directory are fsynced) beside numpy memmap doing the same job in one python3 process
  # (import, np.load mmap_mode="r", 256 random rows, np.save).
  local -a np1=()
  for r in $(seq 1 "${LOCAL_BENCH_LATENCY_ROUNDS:-11}"); do
    local t0 t1
    t0=$(now); env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$vstash" query --dataset seg --exact --vector-file "$q" -k 10 >/dev/null; t1=$(now)
    one+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
    t0=$(now); env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$vstash" batch --dataset seg --size 256 --shuffle --seed "$r" -o "$work/b.npy" >/dev/null; t1=$(now)
    b256+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
    t0=$(now)
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 -c "import sys, numpy as np
x = np.load(sys.argv[1], mmap_mode='r')
np.save(sys.argv[2], x[np.sort(np.random.default_rng(int(sys.argv[3])).choice(len(x), 256, replace=False))])" \
      "$d" "$work/np_b.npy" "$r"
    t1=$(now)
    np1+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
  done
  local mb=$((1000000 * 128 * 4 / 1048576))
  printf 'ingest 1M x 128:         vstash %.2f s (%.0f MB/s)   dd conv=fsync %.2f s (%.0f MB/s)   ratio %.0f%% (target >= 80%%)\n' \
    "$(median "${ing[@]}")" "$(echo "$mb / $(median "${ing[@]}")" | bc -l)" "$(median "${dd_s[@]}")" \
    "$(echo "$mb / $(median "${dd_s[@]}")" | bc -l)" "$(echo "100 * $(median "${dd_s[@]}") / $(median "${ing[@]}")" | bc -l)"
  printf 'one query, 1M x 128:     %.1f ms whole process (target < 100 ms)\n' "$(median "${one[@]}")"
  printf 'one shuffled batch 256:  %.1f ms whole process from 1M rows (target < 20 ms)   numpy memmap %.1f ms (whole process)\n' \
    "$(median "${b256[@]}")" "$(median "${np1[@]}")"
  for rows in 100000 1000000; do
    local ds=seg
    if ((rows == 100000)); then
      /usr/bin/python3 -c "import numpy as np; np.save('$work/seg100k.npy', np.load('$d', mmap_mode='r')[:100000])"
      "$vstash" ingest "$work/seg100k.npy" --dataset seg100k --no-progress --no-index >/dev/null
      ds=seg100k
    fi
    local src=$d
    ((rows == 100000)) && src=$work/seg100k.npy
    # vstash to /dev/null (every row is still gathered into its batch buffer, but /dev/null
    # does not read the buffer) and to a pipe whose reader (cat) reads every byte.
    local -a vs=() vp=() np_s=()
    for r in $(seq 1 "$rounds"); do
      local t0 t1
      t0=$(now)
      env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$vstash" batch --dataset "$ds" --size 256 --shuffle --seed "$r" --stream -o - >/dev/null 2>&1
      t1=$(now)
      vs+=("$(echo "$t1 - $t0" | bc -l)")
      t0=$(now)
      env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$vstash" batch --dataset "$ds" --size 256 --shuffle --seed "$r" --stream -o - 2>/dev/null | cat >/dev/null
      t1=$(now)
      vp+=("$(echo "$t1 - $t0" | bc -l)")
      np_s+=("$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 - "$src" "$r" <<'PY'
import sys, time, numpy as np
x = np.load(sys.argv[1], mmap_mode="r")
perm = np.random.default_rng(int(sys.argv[2])).permutation(len(x))
t0 = time.perf_counter()
for i in range(0, len(x), 256):
    b = x[perm[i:i + 256]]
print(time.perf_counter() - t0)
PY
)")
    done
    printf 'shuffled epoch %7d:  vstash %.3f s (%.0f rows/s, whole process)   numpy memmap %.3f s (%.0f rows/s, loop only)   vstash | cat %.3f s (%.0f rows/s)\n' \
      "$rows" "$(median "${vs[@]}")" "$(echo "$rows / $(median "${vs[@]}")" | bc -l)" \
      "$(median "${np_s[@]}")" "$(echo "$rows / $(median "${np_s[@]}")" | bc -l)" \
      "$(median "${vp[@]}")" "$(echo "$rows / $(median "${vp[@]}")" | bc -l)"
  done
  rm -f "$d" "$work/seg100k.npy"
}
if [[ ${LOCAL_BENCH_ONLY:-} == segments ]]; then
  segments_bench
  exit 0
fi

printf '%-10s %12s %10s %18s %16s\n' rows ingest_rows/s MB/s "batch256 shuffled" "query k=10 mean"
for rows in 100000 1000000; do
  gen "$rows" 128 "$work/d.npy"
  gen 100 128 "$work/q.npy"
  ds=bench$rows
  t0=$(now)
  "$vstash" ingest "$work/d.npy" --dataset "$ds" --no-progress --no-index --json >/dev/null
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

echo
exact_search_bench
echo
hnsw_bench
echo
export_bench
echo
segments_bench
echo

# Peak memory of ingesting a 2 GB file (4M x 128 float32): the reader streams row blocks.
gen 4194304 128 "$work/big.npy"
/usr/bin/time -f '%M' -o "$work/rss" "$vstash" ingest "$work/big.npy" --dataset big --no-progress --no-index >/dev/null
rss_kb=$(tail -n 1 "$work/rss")
printf '\ningest of a %s MB file: peak RSS %.0f MB (target < 300 MB)\n' \
  "$(( $(stat -c %s "$work/big.npy") / 1048576 ))" "$(echo "$rss_kb / 1024" | bc -l)"
