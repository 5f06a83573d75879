# SPDX-License-Identifier: MIT
# fuzz_replay: every seed and regression input of the fuzz targets (tests/fuzz/), run once
# through the targets built with this build's compiler and sanitizers. The fuzzing itself is
# the clang build of tests/fuzz/run.sh (scripts/test.sh runs both).
include(${PROJECT_SOURCE_DIR}/tests/fuzz/targets.cmake)
set(fuzz_replay_sources ${PROJECT_SOURCE_DIR}/tests/fuzz/replay.cpp ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz.cpp)
foreach(name IN LISTS vstash_fuzz_targets)
  list(APPEND fuzz_replay_sources ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_${name}.cpp)
endforeach()
add_executable(vstash_fuzz_replay ${fuzz_replay_sources})
target_compile_definitions(vstash_fuzz_replay PRIVATE VSTASH_FUZZ_REPLAY)
target_link_libraries(vstash_fuzz_replay PRIVATE vstash_core vstash_settings)
add_test(NAME fuzz_replay COMMAND vstash_fuzz_replay ${PROJECT_SOURCE_DIR}/tests/fuzz)
