# SPDX-License-Identifier: MIT
# The training workflow (issue 7) through the CLI: sharded streaming by worker processes,
# batches independent of --workers, concurrent checkpoint saves and retention, a save killed
# mid-way, progress. Runs against a fresh local store in a temp dir; other backends register
# training_<backend> with VSTASH_TRAINING_CONFIG=<profile file> VSTASH_TRAINING_PROFILE=<name>
# (and their server fixture), e.g.
#   add_test(NAME training_pgvector COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/training_test.py)
#   set_tests_properties(training_pgvector PROPERTIES FIXTURES_REQUIRED postgres ENVIRONMENT
#     "${VSTASH_TEST_ENV};VSTASH_TRAINING_CONFIG=${VSTASH_TEST_STATE}/pgvector.yaml;VSTASH_TRAINING_PROFILE=pgvector")
# The unit tests of the loader, shards, batch cache and retention are in `unit`
# (vstash_unittest -ts='training*').
add_test(NAME training_local
         COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/training_test.py)
set_tests_properties(training_local PROPERTIES
  ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_TRAINING_CONFIG=;VSTASH_TRAINING_PROFILE="
  TIMEOUT 900)
