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

# The same test on every server backend, against the server its suite starts.
function(vstash_training_test backend option fixture profile_file profile)
  if(${option})
    add_test(NAME training_${backend}
             COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/training_test.py)
    set_tests_properties(training_${backend} PROPERTIES FIXTURES_REQUIRED ${fixture} TIMEOUT 1200
      ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_TRAINING_CONFIG=${VSTASH_TEST_STATE}/${profile_file};VSTASH_TRAINING_PROFILE=${profile}")
  endif()
endfunction()
vstash_training_test(pgvector VSTASH_WITH_PGVECTOR pg pgvector.yaml pg)
vstash_training_test(redis VSTASH_WITH_REDIS redis redis.yaml redis)
vstash_training_test(qdrant VSTASH_WITH_QDRANT qdrant qdrant.yaml qdrant)
vstash_training_test(pinecone VSTASH_WITH_PINECONE pinecone_double pinecone.yaml pinecone)
