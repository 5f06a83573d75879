#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Qdrant ingest throughput: encode-and-send rows/s and MB/s of `vstash ingest` against the
# protocol double, with 1, 2 and 4 parallel requests, and the share of write time spent
# building JSON (from the backend's VSTASH_QDRANT_TIMINGS report).
#   bench/qdrant_bench.sh [BUILD_DIR]
# Environment: ROWS (100000), DIM (768), PARALLEL ("1 2 4"), MODE (sink | store; default sink:
# the double acknowledges upserts without parsing them, so the figure is the client's, not the
# Python double's; store parses and keeps every point), PORT (56397), BATCH_BYTES (4194304).
set -euo pipefail

build=${1:-build}
vstash=$build/vstash
rows=${ROWS:-100000}
dim=${DIM:-768}
parallel=${PARALLEL:-"1 2 4"}
mode=${MODE:-sink}
port=${PORT:-56397}
batch_bytes=${BATCH_BYTES:-4194304}
python=/usr/bin/python3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/vstash-qdrant-bench.XXXXXX)
pid=""
cleanup() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

[[ -x $vstash ]] || { echo "qdrant_bench.sh: no $vstash (build it first)" >&2; exit 2; }
"$python" -c "import numpy as np; np.save('$work/x.npy', np.random.default_rng(1).standard_normal(($rows, $dim)).astype(np.float32))"

args=(--port "$port" --apply-delay-ms 0)
[[ $mode == sink ]] && args+=(--sink-upserts)
"$python" "$here/../tests/doubles/qdrant_double.py" "${args[@]}" >"$work/double.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/" >/dev/null || { echo "qdrant_bench.sh: double not ready" >&2; cat "$work/double.log" >&2; exit 1; }

echo "qdrant ingest: $rows x $dim float32 (euclidean, vectors only), mode=$mode, request limit $batch_bytes bytes"
printf "%-9s %10s %10s %10s %11s %10s\n" parallel seconds rows/s MB/s "json share" "cpu s"
for p in $parallel; do
  cat >"$work/vstash.yaml" <<YAML
default: q
profiles:
  q:
    type: qdrant
    host: 127.0.0.1
    port: $port
    parallel: $p
    max_request_bytes: $batch_bytes
YAML
  start=$(date +%s.%N)
  # bash's time keyword: user+system CPU seconds of vstash (the machine may be shared).
  TIMEFORMAT='cpu %U %S'
  { time VSTASH_CONFIG=$work/vstash.yaml VSTASH_QDRANT_TIMINGS=1 "$vstash" --no-progress -q --dataset "bench_p$p" \
    ingest "$work/x.npy" --metric euclidean --batch-size 10000 2>"$work/timings.txt" ; } 2>"$work/cpu.txt"
  end=$(date +%s.%N)
  cpu=$(awk '/^cpu/ {print $2 + $3}' "$work/cpu.txt")
  read -r sent_rows sent_bytes encode_s send_s < <(awk '/qdrant timings/ {print $4, $6, $8, $10}' "$work/timings.txt")
  "$python" - "$start" "$end" "$sent_rows" "$sent_bytes" "$encode_s" "$send_s" "$cpu" "$p" <<'PY'
import sys
start, end, rows, nbytes, enc, send, cpu = map(float, sys.argv[1:8])
wall = end - start
print(f"{sys.argv[8]:<9} {wall:10.2f} {rows / wall:10.0f} {nbytes / wall / 1e6:10.1f} {100 * enc / (enc + send):10.1f}% {cpu:10.2f}")
PY
done
