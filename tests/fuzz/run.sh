#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (VSTASH_FUZZ, clang; only the sources the parsers need) and runs
# each one: every seed (tests/fuzz/corpus/<target>/) and regression input
# (tests/fuzz/regressions/<target>/) once, then fuzzing from the seeds for VSTASH_FUZZ_SECONDS
# (default 20; 0 = replay only), as many targets at a time as there are cores. Prints each
# target's executions ("Done N runs in S second(s)"); exits 1 when any target crashes, leaks,
# times out or runs out of memory. The failing input is kept as <build>/artifacts/<target>-*:
# once its cause is understood, add it to tests/fuzz/regressions/<target>/.
#   tests/fuzz/run.sh [BUILD_DIR]     (default build/fuzz; compiler: VSTASH_FUZZ_CXX, clang++-14)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${1:-$root/build/fuzz}
seconds=${VSTASH_FUZZ_SECONDS:-20}
jobs=$(nproc)

# Quiet unless it fails.
quiet() {
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" | tail -40
    echo "fuzz: failed: $*" >&2
    exit 1
  fi
}
# -g1 (line tables only): crash reports keep function, file and line; the build is faster.
quiet cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="${VSTASH_FUZZ_CXX:-clang++-14}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DVSTASH_FUZZ=ON -DVSTASH_BUILD_TESTS=OFF \
  -DVSTASH_WITH_PGVECTOR=OFF -DVSTASH_WITH_REDIS=OFF
quiet cmake --build "$build" -j"$jobs" --target vstash_fuzz

targets=()
for exe in "$build"/tests/fuzz/fuzz_*; do
  [[ -x $exe ]] && targets+=("${exe##*/fuzz_}")
done
mkdir -p "$build/logs" "$build/artifacts"

# One target: replay its inputs, then fuzz; the log is <build>/logs/<target>.log.
run_target() {
  local t=$1 exe=$build/tests/fuzz/fuzz_$1 log=$build/logs/$1.log
  local inputs=("$root/tests/fuzz/corpus/$t"/*)
  [[ -d $root/tests/fuzz/regressions/$t ]] && inputs+=("$root/tests/fuzz/regressions/$t"/*)
  local common=(-rss_limit_mb=2048 -timeout=10 "-artifact_prefix=$build/artifacts/$t-")
  "$exe" "${common[@]}" "${inputs[@]}" >"$log" 2>&1 || return 1
  ((seconds > 0)) || return 0
  mkdir -p "$build/corpus/$t"
  # Inputs found here go to the build tree's corpus (the first directory), never the seeds.
  "$exe" "${common[@]}" -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 \
    "$build/corpus/$t" "$root/tests/fuzz/corpus/$t" >>"$log" 2>&1
}

for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do
    wait -n || true
  done
  rm -f "$build/logs/$t.status"
  { run_target "$t" && echo 0 >"$build/logs/$t.status"; } &
done
wait

failed=0
for t in "${targets[@]}"; do
  if [[ -f $build/logs/$t.status ]]; then
    done_line=$(grep -a '^Done [0-9]* runs' "$build/logs/$t.log" | tail -1 || true)
    echo "fuzz_$t: ${done_line:-replayed $(grep -ac '^Executed ' "$build/logs/$t.log") inputs}"
  else
    failed=1
    echo "fuzz_$t: FAILED (log: $build/logs/$t.log)"
    # The input (the last one replayed, or the one written as an artifact), what broke, where.
    { grep -a '^Running:' "$build/logs/$t.log" | tail -1
      grep -a -E 'Test unit written|ERROR|terminate called|what\(\)|vstash fuzz:|runtime error|^ +#[0-9]+ .* in vstash::' \
        "$build/logs/$t.log" | head -12
    } | cut -c1-240 | sed 's/^/  /'
  fi
done
exit "$failed"
