#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# README's second command: install everything, build once (ASan + UBSan, warnings as errors)
# and run every test suite through CTest. Servers (PostgreSQL + pgvector, redis-server, the
# Qdrant and Pinecone protocol doubles) are started by CTest fixtures on loopback ports with
# their data under the build tree, and stopped at the end, also when interrupted. Then the
# parsers are fuzzed for a bounded time (tests/fuzz/run.sh, a separate small clang build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${VSTASH_BUILD_DIR:-$root/build/test}
jobs=$(nproc)

scripts/install-deps.sh --test

# Ninja where it is installed (Debian's ninja-build): it compiles the programs' sources while
# vstash_core is still being archived and links while others compile, where make waits for
# each target. A build directory keeps the generator it was made with.
generator=()
[[ ! -f $build/CMakeCache.txt ]] && command -v ninja >/dev/null && generator=(-G Ninja)
# -g1 (line tables): sanitizer reports and backtraces keep function, file and line, and the
# compiler skips most of the debug information (10-33% of a translation unit here, about a
# quarter on average).
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DVSTASH_SANITIZE=ON -DVSTASH_WERROR=ON \
  -DVSTASH_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$jobs"

state=$build/test-state  # VSTASH_TEST_STATE of tests/CMakeLists.txt
stop_servers() {
  for s in tests/servers/*.sh; do
    VSTASH_TEST_STATE=$state bash "$s" stop >/dev/null 2>&1 || true
  done
}
trap stop_servers EXIT INT TERM

# A server that cannot start fails its fixture and every test that needs it: nothing is skipped.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
# print_suppressions=0: a matched suppression must not add lines to the one-line errors the
# tests assert on.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 1200 "$@" || status=$?

# Fuzzing: a small clang build of the parsers, each fuzz target for VSTASH_FUZZ_SECONDS (20;
# 0 = replay the seeds and regressions only). It prints the executions per target.
tests/fuzz/run.sh "$build-fuzz" || status=1
exit "$status"
