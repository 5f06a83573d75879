#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Peak memory of reading a large array file block by block through src/io (the reader that
# `vstash ingest` uses), for NPY (C order and Fortran order) and a chunked+gzip HDF5 dataset.
# Prints file size, seconds and peak RSS per case; peak RSS should stay near one block, far
# below the file size.
#   bench/io_memory.sh BUILD_DIR [MB=1024] [BLOCK_ROWS=10000]
# Needs BUILD_DIR/tests/vstash_iotool (make vstash_iotool). Data goes to BUILD_DIR/bench-io
# and is removed at the end.
set -euo pipefail
build=${1:?usage: bench/io_memory.sh BUILD_DIR [MB] [BLOCK_ROWS]}
mb=${2:-1024}
block=${3:-10000}
iotool=$build/tests/vstash_iotool
[[ -x $iotool ]] || { echo "no $iotool: run make vstash_iotool in $build" >&2; exit 2; }
work=$build/bench-io
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 - "$work" "$mb" <<'PY'
import sys, numpy as np, h5py
work, mb = sys.argv[1], int(sys.argv[2])
dim = 128
rows = mb * 1024 * 1024 // (dim * 4)
rng = np.random.default_rng(1)
step = 65536
c = np.lib.format.open_memmap(f"{work}/c.npy", mode="w+", dtype=np.float32, shape=(rows, dim))
f = np.lib.format.open_memmap(f"{work}/f.npy", mode="w+", dtype=np.float32, shape=(rows, dim), fortran_order=True)
with h5py.File(f"{work}/d.h5", "w") as h:
    d = h.create_dataset("/train", shape=(rows, dim), dtype=np.float32, chunks=(2048, dim), compression="gzip",
                         compression_opts=1)
    for i in range(0, rows, step):
        n = min(step, rows - i)
        x = rng.standard_normal((n, dim), dtype=np.float32)
        c[i:i + n] = x
        f[i:i + n] = x
        d[i:i + n] = x
c.flush()
f.flush()
PY

printf '%-22s %10s %10s %12s %14s\n' file size_MB seconds peak_RSS_MB block_rows
for spec in "$work/c.npy" "$work/f.npy" "$work/d.h5:/train"; do
  size=$(stat -c %s "${spec%%:*}")
  out=$( { /usr/bin/time -f '%e %M' "$iotool" scan "$spec" "$block" >/dev/null; } 2>&1 )
  read -r secs kb <<<"$out"
  printf '%-22s %10d %10s %12d %14d\n' "$(basename "$spec")" $((size / 1048576)) "$secs" $((kb / 1024)) "$block"
done
