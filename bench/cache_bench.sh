#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The cache tier (issue 17 line 3, target: a batch served by the Redis cache tier at least 3x
# faster than from the primary, whole process): one shuffled batch per process,
# `vstash batch --size BATCH --shuffle --seed S --offset O -o out.npy`, from pgvector and from
# the Pinecone double, each without and with `cache:` (a Redis cache), in alternating rounds;
# medians and the ratio primary / cached. Rows:
#   primary            the profile without cache:
#   cached (batch)     the same batch again through the cache (a hit)
#   cached (rows)      a batch of another seed's epoch, after one epoch of seed 1 was streamed
#                      through the cache: served from the rows cached by position
# Private servers (tests/servers/: redis-server, PostgreSQL + pgvector, the Pinecone double) on
# their own ports and state directory, started here and stopped at the end.
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for every run (vstash links OpenBLAS).
#
# Usage: bench/cache_bench.sh [ROWS] [DIM] [BATCH] [ROUNDS]     (default 100000 128 256 7)
#   VSTASH_BIN=path/to/vstash (default: build/vstash), PYTHON=/usr/bin/python3,
#   CACHE_BENCH_PORT_BASE=57680 (redis +0, postgres +1, pinecone double +2; another free port
#   is used when one is taken), CACHE_BENCH_STORES="pgvector pinecone"
set -euo pipefail
ROWS=${1:-100000}
DIM=${2:-128}
BATCH=${3:-256}
ROUNDS=${4:-7}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
VSTASH_BIN=${VSTASH_BIN:-$SRC/build/vstash}
PYTHON=${PYTHON:-/usr/bin/python3}
STORES=${CACHE_BENCH_STORES:-pgvector pinecone}
BASE=${CACHE_BENCH_PORT_BASE:-57680}
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vstash-cache-bench.XXXXXX")
export VSTASH_TEST_STATE=$WORK/state VSTASH_SOURCE_DIR=$SRC PYTHON
export VSTASH_TEST_REDIS_PORT=$BASE VSTASH_TEST_PG_PORT=$((BASE + 1)) VSTASH_TEST_PINECONE_PORT=$((BASE + 2))
mkdir -p "$VSTASH_TEST_STATE"
chmod 755 "$WORK"  # postgres.sh runs initdb as the postgres user under it
BIN=$WORK/vstash
cp "$VSTASH_BIN" "$BIN"  # a private copy: a rebuild during the bench does not change it
cp "$(dirname "$VSTASH_BIN")"/vstash-*.so "$WORK/" 2>/dev/null || true  # its modules (src/util/module.hpp)
started=()
cleanup() {
  for s in "${started[@]}"; do bash "$SRC/tests/servers/$s.sh" stop >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
bash "$SRC/tests/servers/redis.sh" start >/dev/null && started+=(redis)
for s in $STORES; do
  case $s in
    pgvector) bash "$SRC/tests/servers/postgres.sh" start >/dev/null && started+=(postgres) ;;
    pinecone) bash "$SRC/tests/servers/pinecone_double.sh" start >/dev/null && started+=(pinecone_double) ;;
    *) echo "cache_bench: unknown store \"$s\" (pgvector, pinecone)" >&2; exit 2 ;;
  esac
done

"$PYTHON" - "$WORK" "$BIN" "$ROWS" "$DIM" "$BATCH" "$ROUNDS" "$STORES" <<'PY'
import os, statistics, subprocess, sys, time
import numpy as np, yaml
work, vstash, rows, dim, batch, rounds, stores = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7]), sys.argv[7].split()
state = os.path.join(work, "state")
profiles = yaml.safe_load(open(os.path.join(state, "redis.yaml")))["profiles"]
profiles = {"cache": profiles["cache"]}
files = {"pgvector": ("pgvector.yaml", "pg"), "pinecone": ("pinecone.yaml", "pinecone")}
for s in stores:
    name, key = files[s]
    p = yaml.safe_load(open(os.path.join(state, name)))["profiles"][key]
    profiles[s] = p
    profiles[s + "_cached"] = dict(p, cache="cache")
config = os.path.join(work, "vstash.yaml")
yaml.safe_dump({"profiles": profiles}, open(config, "w"))

def run(profile, *args):
    cmd = [vstash, "--config", config, "--profile", profile, "--no-progress", "--quiet", "--dataset", "bench", *args]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"cache_bench: {' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return t

rng = np.random.default_rng(0)
np.save(os.path.join(work, "data.npy"), rng.standard_normal((rows, dim), dtype=np.float32))
np.save(os.path.join(work, "labels.npy"), np.arange(rows, dtype=np.int64))
out = os.path.join(work, "b.npy")
offset = (rows // 2 // batch) * batch
one = lambda seed: ["batch", "--size", str(batch), "--shuffle", "--seed", str(seed), "--offset", str(offset), "-o", out]
print(f"cache bench: {rows} rows x {dim} float32 (+ int64 labels), one shuffled batch of {batch} per process, "
      f"{rounds} alternating rounds, medians (whole process)")
print(f"{'store':<10} {'read':<16} {'median ms':>10} {'min ms':>8} {'x primary':>10}")
for s in stores:
    run(s, "ingest", os.path.join(work, "data.npy"), "--labels", os.path.join(work, "labels.npy"))
    # Warm: the batch of seed 1 (cached as a batch's rows), one epoch of seed 1 streamed
    # through the cache (every row cached by position), the primary's own first-touch costs.
    run(s + "_cached", *one(1))
    run(s + "_cached", "batch", "--stream", "--shuffle", "--seed", "1", "--size", str(batch), "-o", "-")
    run(s, *one(1))
    times = {"primary": [], "cached (batch)": [], "cached (rows)": []}
    for r in range(rounds):
        order = [("primary", s, 1), ("cached (batch)", s + "_cached", 1), ("cached (rows)", s + "_cached", 100 + r)]
        if r % 2:
            order.reverse()
        for label, profile, seed in order:
            times[label].append(run(profile, *one(seed)))
    base = statistics.median(times["primary"])
    for label, ts in times.items():
        m = statistics.median(ts)
        print(f"{s:<10} {label:<16} {m * 1000:10.1f} {min(ts) * 1000:8.1f} {base / m:10.2f}")
PY
