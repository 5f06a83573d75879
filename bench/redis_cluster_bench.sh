#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis Cluster ingest (issue 20 line 1; target: 1M x 128 into a 3-master cluster at least 2x the
# rows/s of one Redis server on the same machine). Starts its own single redis-server
# (tests/servers/redis.sh) and 3-master + 3-replica cluster (tests/servers/redis_cluster.sh) and
# loads N x 128 float32 rows (N in total in every case) four ways, alternating in each round:
#   (a) single    one `vstash ingest` of N rows into the single server
#       cluster   the same into the cluster: one dataset lives in one slot, so on one master;
#                 the ratio is the cost of vstash's routing layer (backends/redis/rediscluster.hpp)
#   (b) single x3 three concurrent `vstash ingest` of N/3 rows each into three datasets of the
#                 single server
#       cluster x3 the same three into the cluster, the datasets named so that their hash tags
#                 ({<name>}, backends/redis/redisstore.hpp) fall in slots of three different
#                 masters (chosen with CLUSTER KEYSLOT): the cluster's scale-out, as far as the
#                 machine's cores allow
#   (c) for each: client CPU seconds (user + sys of the vstash processes, /usr/bin/time) and
#       server CPU seconds (user + sys of every redis-server, from /proc/PID/stat, reaped
#       children included; the cluster's split into masters and replicas), cores busy =
#       (client + server CPU) / wall, and rows per CPU second of the masters (what one node
#       could take with a core of its own): what limits it on this machine.
# Rows/s = N / wall-clock seconds of the whole command (of the slowest of three), process start
# and connection included; the median of BENCH_REPEAT rounds, then every run. Each load's row
# count is checked before its figure counts; the servers are emptied (FLUSHALL) between loads.
# Persistence is the same on both sides: append-only on (appendfsync everysec, no RDB), as the
# test cluster runs; BENCH_AOF=no turns it off on every node instead. The cluster's masters
# also stream every write to their replicas (the single server has none): part of its cost.
#   bench/redis_cluster_bench.sh [BUILD_DIR]     (default build/release; build vstash first)
# Environment: BENCH_ROWS (default 1000000; e.g. 100000 for a quick run), BENCH_REPEAT (5),
# BENCH_AOF (yes), VSTASH_TEST_STATE (default a fresh temporary dir), VSTASH_TEST_REDIS_PORT
# (57501) and VSTASH_TEST_REDIS_CLUSTER_PORT (57510; client ports +0..+5, bus +6..+11).
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for the runs.
set -euo pipefail
shopt -s inherit_errexit  # a failed row check inside $(...) stops the run
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-$root/build/release}
vstash=$build/vstash
[[ -x $vstash ]] || { echo "redis_cluster_bench: no vstash binary at $vstash (pass the build dir)" >&2; exit 2; }
py=/usr/bin/python3
rows=${BENCH_ROWS:-1000000}
repeat=${BENCH_REPEAT:-5}
aof=${BENCH_AOF:-yes}
[[ $aof == yes || $aof == no ]] || { echo "redis_cluster_bench: BENCH_AOF must be yes or no" >&2; exit 2; }
own_state=0
if [[ -z ${VSTASH_TEST_STATE:-} ]]; then
  VSTASH_TEST_STATE=$(mktemp -d "${TMPDIR:-/tmp}/vstash-rcbench.XXXXXX")
  own_state=1
fi
export VSTASH_TEST_STATE VSTASH_NO_PROGRESS=1
export VSTASH_TEST_REDIS_PORT=${VSTASH_TEST_REDIS_PORT:-57501}
export VSTASH_TEST_REDIS_CLUSTER_PORT=${VSTASH_TEST_REDIS_CLUSTER_PORT:-57510}
state=$VSTASH_TEST_STATE
single_sh=$root/tests/servers/redis.sh
cluster_sh=$root/tests/servers/redis_cluster.sh
work=$state/rcbench-work
cleanup() {
  bash "$single_sh" stop || true
  bash "$cluster_sh" stop || true
  rm -rf "$work"
  if [[ $own_state == 1 ]]; then rm -rf "$state"; fi
}
mkdir -p "$state"
rm -rf "$work" && mkdir -p "$work"
trap cleanup EXIT
bash "$single_sh" start >/dev/null
bash "$cluster_sh" start >/dev/null
single_conf=$state/redis.yaml
cluster_conf=$state/redis_cluster.yaml
mapfile -t cports <"$state/redis-cluster.ports"

scli() { bash "$single_sh" cli "$@"; }
ccli() { bash "$cluster_sh" cli "$@"; }
# Every server's pid: the single one, then the six nodes.
single_pid=$(bash "$single_sh" pid)
master_pids=() replica_pids=()  # the roles redis-cli --cluster create gave (no failover here)
for p in "${cports[@]}"; do
  if [[ $(ccli "$p" role | head -1) == master ]]; then
    master_pids+=("$(bash "$cluster_sh" pid "$p")")
  else
    replica_pids+=("$(bash "$cluster_sh" pid "$p")")
  fi
done
((${#master_pids[@]} == 3)) || { echo "redis_cluster_bench: expected 3 masters" >&2; exit 1; }
# cpu_of PID...: user + sys seconds so far, reaped children (AOF rewrites) included.
cpu_of() {
  local hz pid
  hz=$(getconf CLK_TCK)
  for pid in "$@"; do cat "/proc/$pid/stat"; done | awk -v hz="$hz" '{t += $14 + $15 + $16 + $17} END {print t / hz}'
}

# poll CMD...: until CMD succeeds, 120 s at most (no sleep as synchronisation).
poll() {
  local deadline=$((SECONDS + 120))
  until "$@"; do
    ((SECONDS < deadline)) || { echo "redis_cluster_bench: timed out waiting for: $*" >&2; exit 1; }
    sleep 0.1
  done
}
no_rewrite() {  # no_rewrite CLI [PORT]: the server has no AOF rewrite running or scheduled
  "$@" info persistence | tr -d '\r' |
    grep -Eq '^aof_rewrite_in_progress:0' && ! "$@" info persistence | tr -d '\r' | grep -Eq '^aof_rewrite_scheduled:1'
}
quiet_all() {  # every server idle: no AOF rewrite in progress
  poll no_rewrite scli
  local p
  for p in "${cports[@]}"; do poll no_rewrite ccli "$p"; done
}
masters() {  # "PORT FIRST LAST" per slot range of each master, from CLUSTER NODES
  ccli "${cports[0]}" cluster nodes | awk '$3 ~ /master/ {
    split($2, a, "[:@]"); for (i = 9; i <= NF; i++) if ($i !~ /^\[/) { split($i, r, "-"); print a[2], r[1], (r[2] == "" ? r[1] : r[2]) } }'
}
master_of() {  # master_of NAME: the client port of the master holding dataset NAME's hash tag
  local slot
  slot=$(ccli "${cports[0]}" cluster keyslot "x{$1}y")
  masters | awk -v s="$slot" '$2 <= s && s <= $3 {print $1}'
}
flush_all() {
  scli flushall >/dev/null
  local p
  for p in $(masters | awk '{print $1}' | sort -u); do ccli "$p" flushall >/dev/null; done
  quiet_all
}

# Persistence, the same on both sides.
if [[ $aof == yes ]]; then
  scli config set appendonly yes >/dev/null
else
  for p in "${cports[@]}"; do ccli "$p" config set appendonly no >/dev/null; done
fi
quiet_all
persist() { "$@" config get appendonly | tr -d '\r' | sed -n 2p; }
echo "persistence: single appendonly $(persist scli), cluster appendonly $(persist ccli "${cports[0]}") (appendfsync everysec, save \"\" on both)"

# The datasets: (a) one name; (b) three names on three different masters.
name_a=rca
declare -A seen=()
names_b=()
for i in $(seq 0 999); do
  m=$(master_of "rcb$i")
  [[ -z ${seen[$m]:-} ]] || continue
  seen[$m]=1
  names_b+=("rcb$i")
  ((${#names_b[@]} < 3)) || break
done
((${#names_b[@]} == 3)) || { echo "redis_cluster_bench: found no names on three masters" >&2; exit 1; }
echo "cluster masters: $(masters | awk '{printf "%s [%s-%s] ", $1, $2, $3}')"
echo "datasets: (a) $name_a on master $(master_of "$name_a"); (b) $(for n in "${names_b[@]}"; do printf '%s on %s, ' "$n" "$(master_of "$n")"; done)"

"$py" - "$rows" "$work" <<'PY'
import sys, numpy as np
rows, work = int(sys.argv[1]), sys.argv[2]
data = np.random.default_rng(1).standard_normal((rows, 128), dtype=np.float32)  # 512 MB at 1M
np.save(f"{work}/all.npy", data)
for i, part in enumerate(np.array_split(data, 3)):
    np.save(f"{work}/part{i}.npy", part)
PY
part_rows=()
for i in 0 1 2; do
  part_rows+=("$("$py" -c 'import sys, numpy as np; print(np.load(sys.argv[1], mmap_mode="r").shape[0])' "$work/part$i.npy")")
done

# check_rows CONF PROFILE DATASET ROWS: fails unless the dataset holds ROWS rows.
check_rows() {
  "$vstash" --config "$1" --profile "$2" stats --json | "$py" -c '
import json, sys
d = next((d for d in json.load(sys.stdin)["datasets"] if d["name"] == sys.argv[1]), None)
got = d and d["rows"]
sys.exit(0 if got == int(sys.argv[2]) else "%s: %s rows, expected %s" % (sys.argv[1], got, sys.argv[2]))
' "$3" "$4"
}
now() { date +%s.%N; }
# load KIND CASE: one load into an empty store; prints "rows/s client_cpu server_cpu wall".
load() {
  local kind=$1 case=$2 conf profile mpids rpids=() t0 t1 m0 m1 r0 r1 i jobs=()
  if [[ $kind == single ]]; then
    conf=$single_conf profile=redis mpids=("$single_pid")
  else
    conf=$cluster_conf profile=redis_cluster mpids=("${master_pids[@]}") rpids=("${replica_pids[@]}")
  fi
  flush_all
  rm -f "$work"/cpu.*
  m0=$(cpu_of "${mpids[@]}")
  r0=$(cpu_of "${rpids[@]}")
  t0=$(now)
  if [[ $case == one ]]; then
    /usr/bin/time -f "%U %S" -o "$work/cpu.0" \
      "$vstash" --config "$conf" --profile "$profile" --dataset "$name_a" ingest "$work/all.npy" >/dev/null
  else
    for i in 0 1 2; do
      /usr/bin/time -f "%U %S" -o "$work/cpu.$i" \
        "$vstash" --config "$conf" --profile "$profile" --dataset "${names_b[$i]}" ingest "$work/part$i.npy" \
        >/dev/null &
      jobs+=($!)
    done
    for i in "${jobs[@]}"; do wait "$i"; done
  fi
  t1=$(now)
  m1=$(cpu_of "${mpids[@]}")
  r1=$(cpu_of "${rpids[@]}")
  if [[ $case == one ]]; then
    check_rows "$conf" "$profile" "$name_a" "$rows"
  else
    for i in 0 1 2; do check_rows "$conf" "$profile" "${names_b[$i]}" "${part_rows[$i]}"; done
  fi
  cat "$work"/cpu.* | awk -v n="$rows" -v w="$(echo "$t1 - $t0" | bc -l)" -v m="$(echo "$m1 - $m0" | bc -l)" \
    -v r="$(echo "$r1 - $r0" | bc -l)" '{c += $1 + $2} END {printf "%.0f %.2f %.2f %.2f %.2f %.2f\n", n / w, c, m + r, w, m, r}'
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

echo "redis ingest, $rows x 128 float32 in total per load, $(nproc) cores, $repeat alternating rounds (medians)"
declare -A res=() med=()
cases=("single one" "cluster one" "single three" "cluster three")
for round in $(seq 1 "$repeat"); do
  order=("${cases[@]}")
  ((round % 2)) || order=("cluster one" "single one" "cluster three" "single three")
  for c in "${order[@]}"; do
    res[$c]+="$(load "${c% *}" "${c#* }")"$'\n'
  done
done
col() { awk -v k="$1" 'NF {print $k}' <<<"$2"; }
printf '%-12s %9s %8s %15s %8s %6s %14s\n' load rows/s client_s "server_s (m+r)" wall_s busy rows/master_s
for c in "${cases[@]}"; do
  r=${res[$c]}
  # shellcheck disable=SC2046
  rate=$(median $(col 1 "$r")) cl=$(median $(col 2 "$r")) sv=$(median $(col 3 "$r")) wl=$(median $(col 4 "$r"))
  # shellcheck disable=SC2046
  ms=$(median $(col 5 "$r")) rs=$(median $(col 6 "$r"))
  label=$c
  label=${label/ one/ x1}
  label=${label/ three/ x3}
  printf '%-12s %9.0f %8.2f %6.2f (%.2f+%.2f) %8.2f %6.2f %14.0f\n' "$label" "$rate" "$cl" "$sv" "$ms" "$rs" "$wl" \
    "$(echo "($cl + $sv) / $wl" | bc -l)" "$(echo "$rows / $ms" | bc -l)"
  med[$c]=$rate
done
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
echo "(client_s: CPU s of the vstash processes; server_s: of the redis-servers, m masters + r replicas;"
echo " busy: (client_s + server_s) / wall_s, cores in use; rows/master_s: rows per CPU second of the masters,"
echo " the throughput one node could give with a core of its own)"
echo "(a) routing overhead: cluster x1 / single x1 = $(ratio "${med[cluster one]}" "${med[single one]}")"
echo "(b) scale-out:        cluster x3 / single x1 = $(ratio "${med[cluster three]}" "${med[single one]}"), cluster x3 / single x3 = $(ratio "${med[cluster three]}" "${med[single three]}")"
for c in "${cases[@]}"; do
  echo "runs $c (rows/s): $(col 1 "${res[$c]}" | tr '\n' ' ')"
done
