#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Upsert throughput of the Pinecone backend against the protocol double, with 1, 4 and 8
# parallel requests, and the mean request fill (bytes per upsert / 2 MiB).
#   bench/pinecone_bench.sh [BUILD_DIR]      (default build dir: ./build)
# Env: ROWS (100000), DIM (768), PARALLEL ("1 4 8"), PORT (56390: its own double, so a running
# test double is not disturbed). The double runs with --sink: it parses and validates every
# request exactly as usual but stores nothing, so memory stays flat. It is one Python process,
# so the figures are bounded by how fast it parses JSON: they compare the client's parallelism
# and batching, not Pinecone's service.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
vstash=$build/vstash
python=/usr/bin/python3
rows=${ROWS:-100000}
dim=${DIM:-768}
parallel=${PARALLEL:-1 4 8}
port=${PORT:-56390}
key=pcsk-bench-double-key
work=$(mktemp -d /tmp/vstash-pinecone-bench.XXXXXX)
pid=
cleanup() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

[[ -x $vstash ]] || { echo "pinecone_bench.sh: $vstash not found (build it first)" >&2; exit 2; }

"$python" - "$work/data.npy" "$rows" "$dim" <<'PY'
import sys
import numpy as np
np.save(sys.argv[1], np.random.default_rng(0).standard_normal((int(sys.argv[2]), int(sys.argv[3]))).astype(np.float32))
PY

"$python" "$root/tests/doubles/pinecone_double.py" --port "$port" --api-key "$key" --sink \
  --no-log-bodies >"$work/double.log" 2>&1 &
pid=$!
get() { "$python" -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=30).read())' "$1"; }
for _ in $(seq 1 100); do
  get "http://127.0.0.1:$port/__double__/health" >/dev/null 2>&1 && break
  sleep 0.1
done
get "http://127.0.0.1:$port/__double__/health" >/dev/null

echo "pinecone upsert: $rows x $dim float32 against the double on 127.0.0.1:$port (--sink)"
printf '%-9s %12s %10s %10s %12s\n' parallel rows/s MB/s requests mean_fill
for p in $parallel; do
  index="bench-$p-{dimension}"
  cat >"$work/p$p.yaml" <<YAML
default: bench
profiles:
  bench:
    type: pinecone
    api_key: $key
    control_host: http://127.0.0.1:$port
    index_name: $index
    dimension: 8
    metric: cosine
    cloud: aws
    region: us-east-1
    wait: false
    parallel: $p
YAML
  out=$(env -u VSTASH_PROFILE VSTASH_CONFIG="$work/p$p.yaml" VSTASH_NO_PROGRESS=1 \
    "$vstash" --json --dataset bench ingest "$work/data.npy")
  data_index="bench-$p-$dim"
  get "http://127.0.0.1:$port/__double__/requests?index=$data_index" >"$work/log$p.json"
  "$python" - "$out" "$work/log$p.json" "$p" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
log = [e for e in json.load(open(sys.argv[2])) if e["path"].endswith("/vectors/upsert") and e.get("status") == 200]
if not log:
    sys.exit("pinecone_bench.sh: the double saw no upsert (did the profile select pinecone?)")
fill = sum(e["bytes"] for e in log) / len(log) / (2 * 1024 * 1024)
print(f"{sys.argv[3]:<9} {r['rows_per_second']:12.0f} {r['mb_per_second']:10.1f} {len(log):10d} {fill:12.3f}")
PY
done
