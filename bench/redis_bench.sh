#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis ingest benchmark (issue "Redis backend", item 7). Starts a private redis-server (no
# persistence) on a loopback port and, for 100k x 128 and 100k x 768 float32 rows, prints
# side by side:
#   vstash   `vstash ingest` into a redis profile (rows/s, from its --json output)
#   redis-py the same keys and bytes written by bench/redis_py_ingest.py (redis-py + hiredis,
#            pipelined MULTI/EXEC per 10k-row batch)
#   limit    redis-benchmark SET throughput with values of one vstash chunk (256 rows), as
#            rows/s = SET/s x 256: the server's limit for these bytes
#   row_set  redis-benchmark SET/s with values of one row: the limit of a one-key-per-row
#            layout, shown for scale (the issue's wording allows either reading)
#   new-key  redis-benchmark SET of chunk-sized values to random keys (-r), as many as the
#            ingest's chunks: the same bytes stored as new keys, as an ingest stores them.
#            The limit above overwrites one key, so the server reuses the same memory; new
#            keys cost it page faults and allocation, which no client can avoid
# plus the CPU seconds of client and server for each (steadier than wall time on a shared
# machine), then batch-load latency (`vstash batch --size 256`, median of 15 runs) from the local store
# with and without the cache tier (the same server as cache).
#   bench/redis_bench.sh [BUILD_DIR]      (default /work/build-redis or ./build)
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${VSTASH_BUILD:-$src/build}}
bin=$build/vstash
[[ -x $bin ]] || { echo "redis_bench.sh: no vstash binary at $bin (pass the build dir)" >&2; exit 2; }
python=/usr/bin/python3
rows=${BENCH_ROWS:-100000}
work=$(mktemp -d "${TMPDIR:-/tmp}/vstash-redis-bench.XXXXXX")
port=$($python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cleanup() {
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --bind 127.0.0.1 --port "$port" --dir "$work" --save "" --appendonly no --daemonize yes \
  --pidfile "$work/redis.pid" --logfile "$work/redis.log" >/dev/null
for _ in $(seq 1 100); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

cat >"$work/bench.yaml" <<YAML
profiles:
  redis:
    type: redis
    host: 127.0.0.1
    port: $port
    prefix: "vb:"
  cache:
    type: redis
    host: 127.0.0.1
    port: $port
    prefix: "vbc:"
    ttl: 600
  local:
    type: local
    path: $work/local.db
  local_cached:
    type: local
    path: $work/local.db
    cache: cache
YAML

field() { $python -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
# CPU seconds (user+sys) of the server so far, and of a command's process tree (to $cpu_file):
# on a loaded machine wall-clock rates swing, CPU per row does not.
server_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$(cat "$work/redis.pid")/stat"; }
cpu_file=$work/cpu
with_cpu() {
  $python -c '
import resource, subprocess, sys
p = subprocess.run(sys.argv[2:])
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{r.ru_utime + r.ru_stime:.2f}")
sys.exit(p.returncode)' "$cpu_file" "$@"
}

echo "rows: $rows"
printf '%-10s %12s %15s %14s %10s %12s %10s %10s\n' shape vstash_rows/s redis-py_rows/s limit_rows/s vs_py vs_limit row_set/s vs_row_set
for dim in 128 768; do
  data=$work/data_$dim.npy
  $python -c "import numpy as np; np.save('$data', np.random.default_rng(1).standard_normal(($rows, $dim), dtype=np.float32))"
  # Seven runs of each loader, alternating, after an empty server each time; the median
  # rows/s is reported (single runs on a shared machine swing by a third).
  vs=() ps=()
  for rep in 1 2 3 4 5 6 7; do
    redis-cli -p "$port" flushall >/dev/null
    s0=$(server_cpu)
    vs+=("$(with_cpu "$bin" --config "$work/bench.yaml" --profile redis --json --no-progress --dataset "b$dim" \
            ingest "$data" | field rows_per_second)")
    cpu_v="client $(cat "$cpu_file") s, server $(awk -v a="$(server_cpu)" -v b="$s0" 'BEGIN{printf "%.2f", a - b}') s"
    redis-cli -p "$port" flushall >/dev/null
    s0=$(server_cpu)
    ps+=("$(with_cpu $python "$src/bench/redis_py_ingest.py" "$data" "$port" | field rows_per_second)")
    cpu_p="client $(cat "$cpu_file") s, server $(awk -v a="$(server_cpu)" -v b="$s0" 'BEGIN{printf "%.2f", a - b}') s"
  done
  median() { printf '%s\n' "$@" | sort -g | sed -n 4p; }
  v=$(median "${vs[@]}")
  p=$(median "${ps[@]}")
  redis-cli -p "$port" flushall >/dev/null
  value=$((256 * dim * 4))
  n=$((20000 * 128 / dim))  # about 2.5 GB of values: long enough to be a steady figure
  sets=$(redis-benchmark -p "$port" -t set -d "$value" -n "$n" -P 16 -c 4 -q 2>/dev/null | tr '\r' '\n' |
         grep -o 'SET: [0-9.]*' | tail -1 | awk '{print $2}')
  redis-cli -p "$port" flushall >/dev/null
  row_sets=$(redis-benchmark -p "$port" -t set -d $((dim * 4)) -n 400000 -P 16 -c 4 -q 2>/dev/null | tr '\r' '\n' |
             grep -o 'SET: [0-9.]*' | tail -1 | awk '{print $2}')
  chunks=$(((rows + 255) / 256))
  fresh=()
  for rep in 1 2 3; do
    redis-cli -p "$port" flushall >/dev/null
    fresh+=("$(redis-benchmark -p "$port" -t set -d "$value" -n "$chunks" -r 1000000000 -P 16 -c 4 -q 2>/dev/null |
               tr '\r' '\n' | grep -o 'SET: [0-9.]*' | tail -1 | awk '{print $2}')")
  done
  fresh_sets=$(printf '%s\n' "${fresh[@]}" | sort -g | sed -n 2p)
  redis-cli -p "$port" flushall >/dev/null
  $python - "$dim" "$v" "$p" "$sets" "$row_sets" "$fresh_sets" "$chunks" <<'PY'
import sys
dim, v, p, sets, row_sets, fresh_sets, chunks = sys.argv[1], *map(float, sys.argv[2:])
limit = sets * 256
shape = f"N x {dim}"
print(f"{shape:<10} {v:12.0f} {p:15.0f} {limit:14.0f} {v / p:9.2f}x {100 * v / limit:11.0f}% {row_sets:10.0f} {100 * v / row_sets:9.0f}%")
print(f"           new-key limit ({chunks:.0f} SETs of 256 rows to new keys, median of 3): {fresh_sets * 256:.0f} rows/s;"
      f" vstash at {100 * v / (fresh_sets * 256):.0f}%")
PY
  echo "           runs: vstash ${vs[*]}; redis-py ${ps[*]}"
  echo "           cpu for $rows rows (last run): vstash $cpu_v; redis-py $cpu_p"
done

# Batch-load latency: the local store alone, and through the cache tier (warm).
data=$work/data_128.npy
"$bin" --config "$work/bench.yaml" --profile local --no-progress --dataset lat ingest "$data" >/dev/null
latency() {  # profile -> median ms of 15 `vstash batch` runs (process start included)
  local prof=$1
  for i in $(seq 1 15); do
    local t0 t1
    t0=$(date +%s%N)
    "$bin" --config "$work/bench.yaml" --profile "$prof" --no-progress --dataset lat batch --size 256 \
      --offset 25600 -o "$work/b.npy" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
  done | sort -n | sed -n 8p
}
base=$(latency local)
# Warm the cache; a CLI that cannot build the cache tier is reported, not timed.
if err=$("$bin" --config "$work/bench.yaml" --profile local_cached --no-progress --dataset lat batch --size 256 \
         --offset 25600 -o "$work/b.npy" 2>&1 >/dev/null); then
  cached="$(latency local_cached) us"
else
  cached="n/a ($err)"
fi
echo "batch-load latency (256 x 128, median of 15 process runs): local ${base} us, local+redis cache ${cached}"
