#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# pgvector benchmark (issue 3, item 8). For each size, the same float32 rows go into the same
# table layout three ways, in the same run, and the rows/s are printed side by side:
#   vstash    `vstash ingest FILE.npy` (binary COPY from the C++ encoder; its default two writers)
#   psql      `psql \copy ... (FORMAT BINARY)` of the rows pre-encoded to a file: the server's limit
#   psycopg   psycopg3 + numpy, binary COPY with pgvector-python's binary vector dumper
# Then, at 100k x 128 with the HNSW index: index build time, query latency and recall@10
# against exact search (numpy).
#   bench/pgvector_bench.sh [BUILD_DIR]     (default build/release; builds vstash if missing)
# Environment: BENCH_SIZES (default "100000x128 100000x768 1000000x128"), BENCH_QUERIES (1000),
# BENCH_REPEAT (3 rounds per size, medians reported),
# VSTASH_TEST_STATE / VSTASH_TEST_PG_PORT (default build/bench-pg, 55432): a server started
# there by tests/servers/postgres.sh is reused, otherwise one is started and stopped at the end.
# Wall-clock seconds of each whole command (connection and process start included).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-$root/build/release}
if [[ ! -x $build/vstash ]]; then
  scripts/install-deps.sh --test
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DVSTASH_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j"$(nproc)" --target vstash >/dev/null
fi
vstash=$build/vstash
py=/usr/bin/python3
sizes=${BENCH_SIZES:-100000x128 100000x768 1000000x128}
nq=${BENCH_QUERIES:-1000}
repeat=${BENCH_REPEAT:-3}
export VSTASH_TEST_STATE=${VSTASH_TEST_STATE:-$root/build/bench-pg}
export VSTASH_TEST_PG_PORT=${VSTASH_TEST_PG_PORT:-55432}
server=$root/tests/servers/postgres.sh
work=$VSTASH_TEST_STATE/bench-work
started=0
if ! { [[ -f $VSTASH_TEST_STATE/pgvector.yaml ]] &&
       /usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 \
         -p "$(cat "$VSTASH_TEST_STATE/pg.port" 2>/dev/null || echo "$VSTASH_TEST_PG_PORT")"; }; then
  bash "$server" start >/dev/null
  started=1
fi
cleanup() {
  if [[ -n ${prefix:-} ]]; then  # the benchmark's own tables, also on a reused server
    sql "SELECT format('DROP TABLE IF EXISTS %I CASCADE;', relname) FROM pg_class WHERE relkind = 'r'
         AND (relname LIKE '${prefix}\_%' OR relname IN ('ref_psql', 'ref_psycopg'))" | \
      /usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 >/dev/null || true
  fi
  rm -rf "$work"
  if [[ $started == 1 ]]; then bash "$server" stop; fi
}
trap cleanup EXIT
rm -rf "$work" && mkdir -p "$work"

profile=$VSTASH_TEST_STATE/pgvector.yaml
value() { awk -v k="$1" '$1 == k":" {print $2}' "$profile"; }
export PGHOST=$(value host) PGPORT=$(value port) PGDATABASE=$(value database) PGUSER=$(value user)
export PGPASSWORD=$(value password) PGOPTIONS="-c client_min_messages=warning"
prefix=bench$$
export VSTASH_CONFIG=$work/vstash.yaml
sed "s/table_name: .*/table_name: $prefix/" "$profile" >"$VSTASH_CONFIG"
export VSTASH_PROFILE=pg VSTASH_NO_PROGRESS=1
sql() { /usr/lib/postgresql/15/bin/psql -X -q -tA -v ON_ERROR_STOP=1 -c "$1"; }
now() { date +%s.%N; }
# Each timed load starts with no autovacuum worker busy on an earlier load's table, so that
# no loader pays for another's cleanup.
settle() {
  while [[ $(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'") != 0 ]]; do
    sleep 0.2
  done
}
rate() { echo "$1 / ($3 - $2)" | bc -l; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# The layout of a vstash rows table (backends/pgvector/pgdatasets.cpp), for the reference loaders.
# Vectors of up to 1024 dimensions are stored inline there (k_inline_dimensions), so here too.
make_table() {
  sql "DROP TABLE IF EXISTS $1; CREATE TABLE $1 (id text PRIMARY KEY, idx bigint NOT NULL UNIQUE,
       embedding vector($2) NOT NULL, sample bytea, label bytea, metadata jsonb)"
  if (($2 <= 1024)); then sql "ALTER TABLE $1 ALTER COLUMN embedding SET STORAGE PLAIN"; fi
}

gen() {  # gen ROWS DIM FILE SEED
  "$py" - "$@" <<'PY'
import sys, numpy as np
rows, dim, path, seed = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
# Clustered like real embeddings (1000 gaussian clusters shared by data and queries): on pure
# noise in 128 dimensions every neighbour is almost equally far and recall means little.
centers = np.random.default_rng(0).standard_normal((1000, dim), dtype=np.float32)
rng = np.random.default_rng(seed)
for i in range(0, rows, 262144):
    n = min(262144, rows - i)
    out[i:i + n] = centers[rng.integers(0, 1000, n)] + 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
out.flush()
PY
}

# The same rows as vstash sends them (id = row number, idx, vector, three NULLs), as a
# PGCOPY binary file.
encode() {  # encode NPY OUT
  "$py" - "$@" <<'PY'
import struct, sys, numpy as np
data = np.load(sys.argv[1], mmap_mode="r")
dim = data.shape[1]
with open(sys.argv[2], "wb") as f:
    f.write(b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0))
    head = struct.pack(">iHH", 4 + 4 * dim, dim, 0)
    tail = struct.pack(">iii", -1, -1, -1)
    for start in range(0, len(data), 65536):
        block = np.ascontiguousarray(data[start:start + 65536]).astype(">f4")
        parts = []
        for j, row in enumerate(block):
            i = start + j
            sid = str(i).encode()
            parts.append(struct.pack(">hi", 6, len(sid)) + sid + struct.pack(">iq", 8, i) + head + row.tobytes() + tail)
        f.write(b"".join(parts))
    f.write(struct.pack(">h", -1))
PY
}

# psycopg3 + numpy through binary COPY, with the binary vector dumper of pgvector-python
# (pgvector/psycopg/vector.py: '>HH' dim, 0, then '>f4' values), registered the same way.
psycopg_load() {  # psycopg_load NPY TABLE
  "$py" - "$@" <<'PY'
import struct, sys, numpy as np, psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types import TypeInfo
data = np.load(sys.argv[1], mmap_mode="r")
with psycopg.connect() as conn:
    info = TypeInfo.fetch(conn, "vector")
    info.register(conn)
    class VectorBinaryDumper(Dumper):
        format = Format.BINARY
        oid = info.oid
        def dump(self, obj):
            return struct.pack(">HH", obj.shape[0], 0) + np.asarray(obj, dtype=">f4").tobytes()
    conn.adapters.register_dumper(np.ndarray, VectorBinaryDumper)
    with conn.cursor() as cur, cur.copy(f"COPY {sys.argv[2]} (id, idx, embedding) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["text", "int8", "vector"])
        for start in range(0, len(data), 65536):
            block = np.asarray(data[start:start + 65536])
            for j, row in enumerate(block):
                copy.write_row((str(start + j), start + j, row))
PY
}

echo "pgvector benchmark: PostgreSQL $(sql 'SHOW server_version'), pgvector $(sql "SELECT extversion FROM pg_extension WHERE extname = 'vector'"), $(nproc) cores"
printf '%-12s %14s %14s %14s %10s %10s\n' "rows x dim" "vstash rows/s" "psql rows/s" "psycopg rows/s" "vs psql" "vs psycopg"
for size in $sizes; do
  rows=${size%x*}
  dim=${size#*x}
  gen "$rows" "$dim" "$work/d.npy" 1
  encode "$work/d.npy" "$work/d.copy"
  ds=d${rows}x$dim

  # BENCH_REPEAT rounds (default 3) of the three loaders in turn, each into an empty table;
  # the median rows/s of each is reported (single runs of a few seconds swing by a fifth).
  vs=() as=() bs=()
  for round in $(seq 1 "$repeat"); do
    "$vstash" --dataset "$ds" delete --dataset-all --yes >/dev/null 2>&1 || true
    settle
    t0=$(now)
    "$vstash" --dataset "$ds" ingest "$work/d.npy" --no-index --json >"$work/ingest.json"  # the references build none
    t1=$(now)
    vs+=("$(rate "$rows" "$t0" "$t1")")

    make_table ref_psql "$dim"
    settle
    t0=$(now)
    /usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 \
      -c "\\copy ref_psql (id, idx, embedding, sample, label, metadata) FROM '$work/d.copy' WITH (FORMAT BINARY)"
    t1=$(now)
    as+=("$(rate "$rows" "$t0" "$t1")")

    make_table ref_psycopg "$dim"
    settle
    t0=$(now)
    psycopg_load "$work/d.npy" ref_psycopg
    t1=$(now)
    bs+=("$(rate "$rows" "$t0" "$t1")")
  done
  v=$(median "${vs[@]}")
  a=$(median "${as[@]}")
  b=$(median "${bs[@]}")

  # Same row count everywhere, or the figures mean nothing.
  for t in ref_psql ref_psycopg; do
    [[ $(sql "SELECT count(*) FROM $t") == "$rows" ]] || { echo "pgvector_bench: $t has the wrong row count" >&2; exit 1; }
  done
  printf '%-12s %14.0f %14.0f %14.0f %9.1f%% %9.2fx\n' "$size" "$v" "$a" "$b" "$(echo "100 * $v / $a" | bc -l)" \
    "$(echo "$v / $b" | bc -l)"
  echo "             runs (rows/s): vstash $(printf '%.0f ' "${vs[@]}")| psql $(printf '%.0f ' "${as[@]}")| psycopg $(printf '%.0f ' "${bs[@]}")"
  sql "DROP TABLE ref_psql; DROP TABLE ref_psycopg"
  if [[ $size != 100000x128 ]]; then
    "$vstash" --dataset "$ds" delete --dataset-all --yes >/dev/null
  fi
  rm -f "$work/d.copy"
  [[ $size == 100000x128 ]] && cp "$work/d.npy" "$work/q100k.npy"
done

# Query latency and recall@10 with HNSW (the profile's m=16, ef_construction=64, ef_search=40).
if [[ -f $work/q100k.npy ]]; then
  ds=d100000x128
  gen "$nq" 128 "$work/q.npy" 2
  "$py" -c "import numpy as np; np.save('$work/q1.npy', np.load('$work/q.npy')[:1])"
  t0=$(now)
  "$vstash" --dataset "$ds" query --vector-file "$work/q1.npy" -k 10 --json >/dev/null  # builds the index
  t1=$(now)
  build_s=$(echo "$t1 - $t0" | bc -l)
  t0=$(now)
  "$vstash" --dataset "$ds" query --queries "$work/q.npy" -k 10 --no-metadata --json >"$work/hits.ndjson"
  t1=$(now)
  "$py" - "$work/q100k.npy" "$work/q.npy" "$work/hits.ndjson" "$t0" "$t1" "$build_s" <<'PY'
import json, sys, numpy as np
data, queries = np.load(sys.argv[1]), np.load(sys.argv[2])
secs, build = float(sys.argv[5]) - float(sys.argv[4]), float(sys.argv[6])
lines = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
assert len(lines) == len(queries), f"{len(lines)} result lines for {len(queries)} queries"
dn = data / np.linalg.norm(data, axis=1, keepdims=True)
qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
exact = np.argsort(-(qn @ dn.T), axis=1, kind="stable")[:, :10]
def hits_of(line):
    hits = line["hits"] if isinstance(line, dict) and "hits" in line else line
    return [h["index"] for h in hits]
found = sum(len(set(hits_of(l)) & set(e.tolist())) for l, e in zip(lines, exact))
print(f"hnsw m=16 ef_construction=64 ef_search=40, 100000x128 cosine: index build (first query) {build:.1f} s; "
      f"{len(queries)} queries k=10 in one process: {1000 * secs / len(queries):.2f} ms/query "
      f"({len(queries) / secs:.0f} qps); recall@10 vs exact {found / (10 * len(queries)):.4f}")
PY
fi
