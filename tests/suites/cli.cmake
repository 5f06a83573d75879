# SPDX-License-Identifier: MIT
# The command line, end to end: the built binary on a local store in a temp dir
# (tests/integration/cli_test.py, one CTest entry per test class so ctest -j2 spreads them),
# and the bash/zsh/fish completions and man page checked against `vstash --help`.
set(cli_test_classes HelpAndVersion Ingest Query Rows Stats Profiles ExitCodesAndErrors NoHalfWrittenOutput
    OutputModes)
foreach(cls IN LISTS cli_test_classes)
  add_test(NAME cli_${cls}
    COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/cli_test.py -v ${cls})
  set_tests_properties(cli_${cls} PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 600 LABELS cli)
endforeach()

# Hostile input (issue 14): deep JSON, /dev/zero, bounded numbers, stdout errors, names.
add_test(NAME cli_hostile_input
  COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/hostile_input_test.py -v)
set_tests_properties(cli_hostile_input PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 600 LABELS cli)

add_test(NAME cli_completions_and_man
  COMMAND bash ${PROJECT_SOURCE_DIR}/tests/integration/completions_test.sh)
set_tests_properties(cli_completions_and_man PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 300 LABELS cli)
