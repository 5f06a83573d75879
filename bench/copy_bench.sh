#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vstash copy` and `vstash check` against each side's own rate (issue 18 targets):
#   local -> pgvector: copy vs pgvector's `ingest` of the same NPY and the local `export`
#   pgvector -> Redis: copy vs Redis's `ingest` of the NPY and pgvector's `export`
#   check of two equal datasets vs exporting both
# Prints seconds, rows/s and peak RSS (/usr/bin/time) per step; the target is a copy at >= 80%
# of the slower side's rate with peak RSS under 300 MB, and check at least as fast as the two
# exports.
#   bench/copy_bench.sh VSTASH_BIN CONFIG.yaml [ROWS=1000000] [DIM=128]
# CONFIG.yaml must have profiles `pg` (pgvector) and `redis`; the local store goes to a
# scratch directory. Datasets are named copy-bench-* and dropped at the end.
set -euo pipefail
# The benches run on whatever CPU is there: no OpenBLAS tuning from the environment.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
bin=${1:?usage: bench/copy_bench.sh VSTASH_BIN CONFIG.yaml [ROWS] [DIM]}
config=${2:?usage: bench/copy_bench.sh VSTASH_BIN CONFIG.yaml [ROWS] [DIM]}
rows=${3:-1000000}
dim=${4:-128}
work=$(mktemp -d /tmp/vstash-copy-bench.XXXXXX)
cfg=$work/vstash.yaml
{
  cat "$config"
  printf '  bench_local:\n    type: local\n    path: %s/local.db\n' "$work"
} >"$cfg"
export VSTASH_CONFIG=$cfg VSTASH_NO_PROGRESS=1 VSTASH_QUIET=1
cleanup() {
  for p in bench_local pg redis; do
    for d in copy-bench-src copy-bench-ingest copy-bench-copy; do
      "$bin" --profile "$p" --dataset "$d" delete --dataset-all --yes >/dev/null 2>&1 || true
    done
  done
  rm -rf "$work"
}
trap cleanup EXIT

/usr/bin/python3 - "$work/data.npy" "$rows" "$dim" <<'PY'
import sys, numpy as np
path, rows, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
rng = np.random.default_rng(1)
for i in range(0, rows, 65536):
    n = min(65536, rows - i)
    out[i:i + n] = rng.standard_normal((n, dim), dtype=np.float32)
out.flush()
PY

# step NAME ROWS CMD...: runs CMD, prints seconds, rows/s and peak RSS.
step() {
  local name=$1 n=$2
  shift 2
  local out secs kb
  out=$({ /usr/bin/time -f '%e %M' "$@" >/dev/null; } 2>&1 | tail -1)
  read -r secs kb <<<"$out"
  printf '%-44s %9s %12.0f %12d\n' "$name" "$secs" "$(echo "$n / ($secs + 0.0001)" | bc -l)" $((kb / 1024))
}
drop() { "$bin" --profile "$1" --dataset "$2" delete --dataset-all --yes >/dev/null 2>&1 || true; }

printf '# %d x %d float32 (%d MB)\n' "$rows" "$dim" $((rows * dim * 4 / 1048576))
printf '%-44s %9s %12s %12s\n' step seconds rows_per_s peak_RSS_MB
"$bin" --profile bench_local --dataset copy-bench-src ingest "$work/data.npy" >/dev/null
step "local export" "$rows" "$bin" --profile bench_local --dataset copy-bench-src export -o "$work/out.npy"
step "pgvector ingest (NPY, --no-index)" "$rows" "$bin" --profile pg --dataset copy-bench-ingest ingest "$work/data.npy" --no-index
drop pg copy-bench-ingest
step "copy local -> pgvector" "$rows" "$bin" copy bench_local:copy-bench-src pg:copy-bench-copy
step "pgvector export" "$rows" "$bin" --profile pg --dataset copy-bench-copy export -o "$work/out.npy"
step "redis ingest (NPY)" "$rows" "$bin" --profile redis --dataset copy-bench-ingest ingest "$work/data.npy"
drop redis copy-bench-ingest
step "copy pgvector -> redis" "$rows" "$bin" copy pg:copy-bench-copy redis:copy-bench-copy
step "redis export" "$rows" "$bin" --profile redis --dataset copy-bench-copy export -o "$work/out.npy"
step "check local vs pgvector" "$rows" "$bin" check bench_local:copy-bench-src pg:copy-bench-copy
step "check pgvector vs redis" "$rows" "$bin" check pg:copy-bench-copy redis:copy-bench-copy
