#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Many processes, one dataset (issue 20 line 4; target: four at least 1.5x one). For each size,
# the same float32 file goes into an empty pgvector dataset two ways, alternating in the same run:
#   one       `vstash ingest FILE.npy` (one process, its default writers)
#   ranks     `vstash ingest FILE.npy --rank R --world-size W` for R in 0..W-1, started at once
# Both with --no-index (a rank builds none). Rows/s = file rows / wall-clock seconds of the whole
# command (of the slowest rank), process start and connection included; the median of
# BENCH_REPEAT rounds is printed with the ratio ranks/one, and every run's figure after it.
# Each load's row count and next_index are checked before its figure counts.
#   bench/sharded_ingest_bench.sh [VSTASH]    (default build/release/vstash; build it first)
# Environment: BENCH_SIZES (default "100000x128 1000000x128"), BENCH_WORLD (4), BENCH_REPEAT (5),
# VSTASH_TEST_STATE / VSTASH_TEST_PG_PORT (default build/bench-pg, 55432): a server started
# there by tests/servers/postgres.sh is reused, otherwise one is started and stopped at the end.
# BENCH_WRITERS=N passes --writers N to every process on both sides (default: the store's
# choice, 2 connections per process for pgvector, so four ranks hold 8 COPY backends).
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for the runs.
# BENCH_PROFILE=1 also says what limits each load (the medians are unchanged): the client CPU
# seconds of each process (user + sys, /usr/bin/time), the server's CPU seconds (its backends,
# reaped by the postmaster: the postmaster's cutime + cstime delta) and the wait events of the
# active vstash backends sampled every 100 ms from pg_stat_activity (CPU: none).
set -euo pipefail
shopt -s inherit_errexit  # a failed row check inside $(...) stops the run
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
cd "$(dirname "$0")/.."
root=$PWD
vstash=${1:-$root/build/release/vstash}
[[ -x $vstash ]] || { echo "sharded_ingest_bench: no $vstash (build the release vstash first)" >&2; exit 2; }
py=/usr/bin/python3
sizes=${BENCH_SIZES:-100000x128 1000000x128}
world=${BENCH_WORLD:-4}
repeat=${BENCH_REPEAT:-5}
writers=()
[[ -n ${BENCH_WRITERS:-} ]] && writers=(--writers "$BENCH_WRITERS")
export VSTASH_TEST_STATE=${VSTASH_TEST_STATE:-$root/build/bench-pg}
export VSTASH_TEST_PG_PORT=${VSTASH_TEST_PG_PORT:-55432}
server=$root/tests/servers/postgres.sh
work=$VSTASH_TEST_STATE/sharded-bench-work
started=0
if ! { [[ -f $VSTASH_TEST_STATE/pgvector.yaml ]] &&
       /usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 \
         -p "$(cat "$VSTASH_TEST_STATE/pg.port" 2>/dev/null || echo "$VSTASH_TEST_PG_PORT")"; }; then
  bash "$server" start >/dev/null
  started=1
fi
prefix=shbench$$
export VSTASH_CONFIG=$work/vstash.yaml VSTASH_PROFILE=pg VSTASH_NO_PROGRESS=1
cleanup() {
  for ds in one ranks; do "$vstash" --dataset "$ds" delete --dataset-all --yes >/dev/null 2>&1 || true; done
  rm -rf "$work"
  if [[ $started == 1 ]]; then bash "$server" stop; fi
}
rm -rf "$work" && mkdir -p "$work"
trap cleanup EXIT
sed "s/table_name: .*/table_name: $prefix/" "$VSTASH_TEST_STATE/pgvector.yaml" >"$VSTASH_CONFIG"

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
gen() {  # gen ROWS DIM FILE
  "$py" - "$@" <<'PY'
import sys, numpy as np
rows, dim, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
np.save(path, np.random.default_rng(1).standard_normal((rows, dim), dtype=np.float32))  # 512 MB at 1M x 128
PY
}
# Fails unless dataset $1 holds $2 rows with next_index $2.
check_rows() {
  "$vstash" stats --json | "$py" -c '
import json, sys
d = next(d for d in json.load(sys.stdin)["datasets"] if d["name"] == sys.argv[1])
n = int(sys.argv[2])
got = (d["rows"], d["next_index"])
sys.exit(0 if got == (n, n) else "%s: (rows, next_index) %s, expected %d" % (sys.argv[1], got, n))
' "$1" "$2"
}
fresh() { "$vstash" --dataset "$1" delete --dataset-all --yes >/dev/null 2>&1 || true; }
profile=${BENCH_PROFILE:-0}
pg_port=$(cat "$VSTASH_TEST_STATE/pg.port" 2>/dev/null || echo "$VSTASH_TEST_PG_PORT")
server_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$(head -1 "$VSTASH_TEST_STATE/pg/postmaster.pid")/stat"; }
sample_waits() {  # sample_waits FILE: until killed, one line per active vstash backend every 100 ms
  local pw
  pw=$("$py" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["profiles"]["pg"]["password"])' "$VSTASH_CONFIG")
  PGPASSWORD=$pw exec psql -h 127.0.0.1 -p "$pg_port" -U vstash vstash_test -Atq >"$1" 2>/dev/null \
    <<<"SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-') FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid() \\watch 0.1"
}
# timed LABEL COMMAND...: runs the command (under /usr/bin/time when profiling)
timed() {
  local label=$1
  shift
  if [[ $profile == 1 ]]; then /usr/bin/time -f "$label %U %S" -a -o "$work/cpu" "$@"; else "$@"; fi
}
start_profile() {
  [[ $profile == 1 ]] || return 0
  rm -f "$work/cpu" "$work/waits"
  ticks0=$(server_ticks)
  sample_waits "$work/waits" &
  sampler=$!
}
end_profile() {  # end_profile LABEL SECONDS: one line of CPU figures, one of wait events (to stderr)
  [[ $profile == 1 ]] || return 0
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  local hz server
  hz=$(getconf CLK_TCK)
  server=$(echo "($(server_ticks) - $ticks0) / $hz" | bc -l)
  awk -v l="$1" -v wall="$2" -v srv="$server" '{c += $2 + $3; p = p sprintf(" %.2f", $2 + $3)}
    END {printf "  profile %-5s wall %.2fs client cpu %.2fs (per process:%s) server cpu %.2fs, cores busy %.2f\n",
         l, wall, c, p, srv, (c + srv) / wall}' "$work/cpu" >&2
  echo "  waits   $1: $(grep -v '^$' "$work/waits" | sort | uniq -c | sort -rn | head -6 | awk '{printf "%s %s, ", $2, $1}')" >&2
}
run_one() {  # prints the seconds of one process
  fresh one
  local t0 t1
  start_profile
  t0=$(now)
  timed one "$vstash" --dataset one ingest "$1" --no-index "${writers[@]}" >/dev/null
  t1=$(now)
  end_profile one "$(echo "$t1 - $t0" | bc -l)"
  check_rows one "$2"
  echo "$t1 - $t0" | bc -l
}
run_ranks() {  # prints the seconds until the last of $world ranks is done
  fresh ranks
  local t0 t1 pids=() r
  start_profile
  t0=$(now)
  for ((r = 0; r < world; r++)); do
    timed "rank$r" "$vstash" --dataset ranks ingest "$1" --no-index --rank "$r" --world-size "$world" "${writers[@]}" >/dev/null &
    pids+=($!)
  done
  for r in "${pids[@]}"; do wait "$r"; done
  t1=$(now)
  end_profile ranks "$(echo "$t1 - $t0" | bc -l)"
  check_rows ranks "$2"
  echo "$t1 - $t0" | bc -l
}

echo "sharded ingest into pgvector: $world ranks at once vs one process, $(nproc) cores, $repeat rounds (medians), writers per process: ${BENCH_WRITERS:-default}"
printf '%-12s %14s %14s %8s\n' "rows x dim" "one rows/s" "ranks rows/s" "ratio"
for size in $sizes; do
  rows=${size%x*}
  dim=${size#*x}
  gen "$rows" "$dim" "$work/d.npy"
  ones=() ranks=()
  for round in $(seq 1 "$repeat"); do  # alternating, the first of the pair swapped each round
    if ((round % 2)); then
      ones+=("$(echo "$rows / $(run_one "$work/d.npy" "$rows")" | bc -l)")
      ranks+=("$(echo "$rows / $(run_ranks "$work/d.npy" "$rows")" | bc -l)")
    else
      ranks+=("$(echo "$rows / $(run_ranks "$work/d.npy" "$rows")" | bc -l)")
      ones+=("$(echo "$rows / $(run_one "$work/d.npy" "$rows")" | bc -l)")
    fi
  done
  o=$(median "${ones[@]}")
  k=$(median "${ranks[@]}")
  printf '%-12s %14.0f %14.0f %7.2fx\n' "$size" "$o" "$k" "$(echo "$k / $o" | bc -l)"
  echo "             runs (rows/s): one $(printf '%.0f ' "${ones[@]}")| ranks $(printf '%.0f ' "${ranks[@]}")"
  rm -f "$work/d.npy"
done
