#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis Cluster ingest (issue 20 line 1; target: 1M x 128 into a 3-master cluster at least 2x the
# rows/s of one Redis server on the same machine). Starts its own single redis-server
# (tests/servers/redis.sh) and 3-master + 3-replica cluster (tests/servers/redis_cluster.sh) and
# loads N x 128 float32 rows (N in total in every case) five ways, alternating in each round:
#   (a) single    one `vstash ingest` of N rows into the single server
#       cluster   the same into the cluster with shards_per_dataset: 1: the dataset in one slot,
#                 on one master; the ratio is the cost of vstash's routing layer
#                 (backends/redis/rediscluster.hpp)
#       spread    the same with shards_per_dataset: 3: one dataset's chunks over the three
#                 masters (docs/backends.md "### Redis"): one dataset scaled out
#   (b) single x3 three concurrent `vstash ingest` of N/3 rows each into three datasets of the
#                 single server
#       cluster x3 the same three into the cluster (one shard each), the datasets named so that
#                 their hash tags ({<name>}, backends/redis/redisstore.hpp) fall in slots of three
#                 different masters (chosen with CLUSTER KEYSLOT)
#   (c) for each: client CPU seconds (user + sys of the vstash processes, /usr/bin/time) and
#       server CPU seconds (user + sys of every redis-server, from /proc/PID/stat, reaped
#       children included; the cluster's split per master and replicas), cores busy =
#       (client + server CPU) / wall, rows per CPU second of the masters and rows per CPU second
#       of the busiest master (what the cluster could take with a core per node): what limits it
#       on this machine. Fan-out overhead: client CPU per row, spread / single.
#   (d) after each one-dataset load (single, cluster, spread), once it has settled (no AOF
#       rewrite, every replica at its master's offset): one shuffled epoch,
#       `batch --size 256 --shuffle --stream -o - >/dev/null`: rows/s, client CPU per row and
#       the servers' CPU, spread against the single server.
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
"$vstash" --version | grep -q redis || { echo "redis_cluster_bench: $vstash has no redis backend" >&2; exit 2; }
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
# One profile file: single (the server's), one and spread (the cluster's, 1 and 3 shards).
conf=$state/rcbench.yaml
"$py" - "$state" "$conf" <<'PY'
import sys, yaml
state, out = sys.argv[1], sys.argv[2]
single = yaml.safe_load(open(f"{state}/redis.yaml"))["profiles"]["redis"]
cluster = yaml.safe_load(open(f"{state}/redis_cluster.yaml"))["profiles"]["redis_cluster"]
profiles = {"single": single, "one": dict(cluster, shards_per_dataset=1), "spread": dict(cluster, shards_per_dataset=3)}
yaml.safe_dump({"profiles": profiles}, open(out, "w"))
PY
"$vstash" --config "$conf" --profile spread stats >/dev/null ||
  { echo "redis_cluster_bench: this build does not take shards_per_dataset (see above)" >&2; exit 2; }
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
in_sync() {  # in_sync PORT: the node is a replica, or a master whose replicas have all it sent
  ccli "$1" info replication | tr -d '\r' | awk -F'[:=,]' '/^master_repl_offset:/ {m = $2}
    /^slave[0-9]+:/ {for (i = 1; i < NF; i++) if ($i == "offset") o[NR] = $(i + 1)}
    END {for (k in o) if (o[k] != m) exit 1}'
}
settled() {  # what a load left behind is done: AOF rewrites, replication to the replicas
  quiet_all
  local p
  for p in "${cports[@]}"; do poll in_sync "$p"; done
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

# check_rows PROFILE DATASET ROWS: fails unless the dataset holds ROWS rows.
check_rows() {
  "$vstash" --config "$conf" --profile "$1" stats --json | "$py" -c '
import json, sys
d = next((d for d in json.load(sys.stdin)["datasets"] if d["name"] == sys.argv[1]), None)
got = d and d["rows"]
sys.exit(0 if got == int(sys.argv[2]) else "%s: %s rows, expected %s" % (sys.argv[1], got, sys.argv[2]))
' "$2" "$3"
}
now() { date +%s.%N; }
# cpu_each PID...: each pid's CPU seconds so far, space-separated.
cpu_each() {
  local pid
  for pid in "$@"; do printf '%s ' "$(cpu_of "$pid")"; done
}
# deltas "A..." "B...": B - A element by element, padded to three.
deltas() {
  awk -v a="$1" -v b="$2" 'BEGIN {n = split(a, x); split(b, y); for (i = 1; i <= 3; i++) printf "%.2f ", (i <= n ? y[i] - x[i] : 0)}'
}
# epoch PROFILE PIDS...: once the load has settled, one shuffled epoch of $name_a to /dev/null;
# prints "rows/s client_s server_s" (server_s: of PIDS).
epoch() {
  local profile=$1 t0 t1 s0 s1
  shift
  settled
  s0=$(cpu_of "$@")
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$work/cpu.epoch" "$vstash" --config "$conf" --profile "$profile" --quiet \
    --dataset "$name_a" batch --size 256 --shuffle --seed 1 --stream -o - >/dev/null
  t1=$(now)
  s1=$(cpu_of "$@")
  awk -v n="$rows" -v w="$(echo "$t1 - $t0" | bc -l)" -v s="$(echo "$s1 - $s0" | bc -l)" \
    '{printf "%.0f %.3f %.2f", n / w, $1 + $2, s}' "$work/cpu.epoch"
}
# load KIND CASE: one load into an empty store; prints "rows/s client_s server_s wall_s masters_s
# replicas_s m1_s m2_s m3_s epoch_rows/s epoch_client_s epoch_server_s" (no epoch after x3: 0 0 0).
load() {
  local kind=$1 case=$2 profile mpids rpids=() t0 t1 m0 m1 r0 r1 i jobs=() ep="0 0 0"
  case $kind in
    single) profile=single mpids=("$single_pid") ;;
    cluster) profile=one mpids=("${master_pids[@]}") rpids=("${replica_pids[@]}") ;;
    spread) profile=spread mpids=("${master_pids[@]}") rpids=("${replica_pids[@]}") ;;
  esac
  flush_all
  rm -f "$work"/cpu.*
  m0=$(cpu_each "${mpids[@]}")
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
  m1=$(cpu_each "${mpids[@]}")
  r1=$(cpu_of "${rpids[@]}")
  if [[ $case == one ]]; then
    check_rows "$profile" "$name_a" "$rows"
    ep=$(epoch "$profile" "${mpids[@]}" "${rpids[@]}")
  else
    for i in 0 1 2; do check_rows "$profile" "${names_b[$i]}" "${part_rows[$i]}"; done
  fi
  cat "$work"/cpu.[0-9] | awk -v n="$rows" -v w="$(echo "$t1 - $t0" | bc -l)" -v per="$(deltas "$m0" "$m1")" \
    -v r="$(echo "$r1 - $r0" | bc -l)" -v ep="$ep" '{c += $1 + $2} END {
      split(per, m); printf "%.0f %.3f %.2f %.2f %.2f %.2f %s %s\n", n / w, c, m[1] + m[2] + m[3] + r, w,
        m[1] + m[2] + m[3], r, per, ep}'
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

echo "redis ingest, $rows x 128 float32 in total per load, $(nproc) cores, $repeat alternating rounds (medians)"
declare -A res=() med=()
cases=("single one" "cluster one" "spread one" "single three" "cluster three")
for round in $(seq 1 "$repeat"); do
  order=("${cases[@]}")
  ((round % 2)) || order=("spread one" "cluster one" "single one" "cluster three" "single three")
  for c in "${order[@]}"; do
    res[$c]+="$(load "${c% *}" "${c#* }")"$'\n'
  done
done
col() { awk -v k="$1" 'NF {print $k}' <<<"$2"; }
# shellcheck disable=SC2046
m() { median $(col "$1" "${res[$2]}"); }
printf '%-12s %9s %8s %15s %8s %6s %18s %13s %14s\n' load rows/s client_s "server_s (m+r)" wall_s busy \
  "master_s (each)" rows/master_s rows/busiest_s
for c in "${cases[@]}"; do
  label=${c/ one/ x1}
  label=${label/ three/ x3}
  label=${label/spread x1/spread (S=3)}
  busiest=$(printf '%s\n' "$(m 7 "$c")" "$(m 8 "$c")" "$(m 9 "$c")" | sort -g | tail -1)
  printf '%-12s %9.0f %8.2f %6.2f (%.2f+%.2f) %8.2f %6.2f %18s %13.0f %14.0f\n' "$label" "$(m 1 "$c")" "$(m 2 "$c")" \
    "$(m 3 "$c")" "$(m 5 "$c")" "$(m 6 "$c")" "$(m 4 "$c")" "$(echo "($(m 2 "$c") + $(m 3 "$c")) / $(m 4 "$c")" | bc -l)" \
    "$(m 7 "$c")/$(m 8 "$c")/$(m 9 "$c")" "$(echo "$rows / $(m 5 "$c")" | bc -l)" "$(echo "$rows / $busiest" | bc -l)"
  med[$c]=$(m 1 "$c")
done
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
us_per_row() { echo "$1 * 1000000 / $rows" | bc -l | xargs printf '%.2f'; }
echo "(client_s: CPU s of the vstash processes; server_s: of the redis-servers, m masters + r replicas;"
echo " busy: (client_s + server_s) / wall_s, cores in use; master_s: each master's CPU s (single: the server);"
echo " rows/master_s: rows per CPU second of the masters; rows/busiest_s: rows per CPU second of the busiest"
echo " master, the rate the cluster could take with a core per node)"
echo "(a) routing overhead: cluster x1 / single x1 = $(ratio "${med[cluster one]}" "${med[single one]}")"
echo "    one dataset spread: spread / single x1 = $(ratio "${med[spread one]}" "${med[single one]}"), spread / cluster x1 = $(ratio "${med[spread one]}" "${med[cluster one]}")"
echo "    fan-out overhead, client CPU per row: spread $(us_per_row "$(m 2 "spread one")") us, cluster x1 $(us_per_row "$(m 2 "cluster one")") us, single $(us_per_row "$(m 2 "single one")") us"
echo "(b) scale-out:        cluster x3 / single x1 = $(ratio "${med[cluster three]}" "${med[single one]}"), cluster x3 / single x3 = $(ratio "${med[cluster three]}" "${med[single three]}")"
echo "(d) shuffled epoch (batch --size 256 --shuffle --stream -o - >/dev/null), medians:"
printf '    %-12s %9s %16s %9s\n' load rows/s client_us/row server_s
for c in "single one" "cluster one" "spread one"; do
  printf '    %-12s %9.0f %16.2f %9.2f\n' "${c% one}" "$(m 10 "$c")" "$(us_per_row "$(m 11 "$c")")" "$(m 12 "$c")"
done
echo "    spread / single: rows/s $(ratio "$(m 10 "spread one")" "$(m 10 "single one")"), client CPU per row $(ratio "$(m 11 "spread one")" "$(m 11 "single one")")"
f2() { printf '%.2f' "$1"; }
f0() { printf '%.0f' "$1"; }
spread_cpu=$(echo "$(m 2 "spread one") + $(m 3 "spread one")" | bc -l)
spread_busy=$(echo "$spread_cpu / $(m 4 "spread one")" | bc -l)
echo "what limits it: $(nproc) cores for the client and 6 redis-servers (3 masters, 3 replicas), and a"
echo " shared machine (load average $(cut -d' ' -f1-3 /proc/loadavg)). The spread load used $(f2 "$spread_cpu") CPU s in"
echo " $(f2 "$(m 4 "spread one")") s wall, $(f2 "$spread_busy") cores of $(nproc); the replicas took $(m 6 "spread one") s of its $(m 3 "spread one") server s (the single"
echo " server has none). The masters' work is split ($(m 7 "spread one")/$(m 8 "spread one")/$(m 9 "spread one") s), but on $(nproc) cores they"
if (($(echo "$spread_busy < 0.8 * $(nproc)" | bc -l))); then
  echo " do not run side by side with a core each: under 80% of the cores were busy with this load,"
  echo " so the wall is waiting (round trips per block and per master, other processes on the machine)."
else
  echo " compete for the same cores with the client and the replicas: the load is CPU-bound."
fi
echo " 2x one server needs a core per master: its bound is then rows/busiest_s (spread: $(f0 "$(echo "$rows / $(printf '%s\n' "$(m 7 "spread one")" "$(m 8 "spread one")" "$(m 9 "spread one")" | sort -g | tail -1)" | bc -l)")"
echo " rows/s) against the single server's rows/master_s ($(f0 "$(echo "$rows / $(m 5 "single one")" | bc -l)") rows/s)."
for c in "${cases[@]}"; do
  echo "runs $c (rows/s): $(col 1 "${res[$c]}" | tr '\n' ' ')"
done
