# SPDX-License-Identifier: MIT
# `vstash ingest --rank R --world-size W` (issue 20 line 4), once per store:
#   sharded_ingest_<store>   tests/integration/sharded_ingest_test.py: 4 ranks started at once
#                            equal one process byte for byte (export, next_index); kill -9 of a
#                            rank then --resume; flag errors. The store is the profile its
#                            fixture writes (VSTASH_SHARD_CONFIG/VSTASH_SHARD_PROFILE; empty: local).
# Pinecone: fewer rows for the kill test (a slower double), but enough that the victim rank's
# slice outlasts the test's polling (with 2000 rows it could finish before the kill). Qdrant and
# Pinecone have no atomic compare-and-set of the dataset record: there each rank keeps its own
# writer record (backends/common/writerparts.hpp) and the same checks run.
add_test(NAME sharded_ingest_local
         COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/sharded_ingest_test.py)
set_tests_properties(sharded_ingest_local PROPERTIES TIMEOUT 900
                     ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_SHARD_CONFIG=;VSTASH_SHARD_PROFILE=")

function(vstash_sharded_ingest_test store option fixture profile_file profile kill_rows)
  if(${option})
    add_test(NAME sharded_ingest_${store}
             COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/sharded_ingest_test.py)
    set_tests_properties(sharded_ingest_${store} PROPERTIES FIXTURES_REQUIRED ${fixture} TIMEOUT 900
      ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_SHARD_CONFIG=${VSTASH_TEST_STATE}/${profile_file};VSTASH_SHARD_PROFILE=${profile};VSTASH_SHARD_KILL_ROWS=${kill_rows}")
  endif()
endfunction()
vstash_sharded_ingest_test(pgvector VSTASH_WITH_PGVECTOR pg pgvector.yaml pg 24000)
vstash_sharded_ingest_test(redis VSTASH_WITH_REDIS redis redis.yaml redis 24000)
vstash_sharded_ingest_test(qdrant VSTASH_WITH_QDRANT qdrant qdrant.yaml qdrant 24000)
vstash_sharded_ingest_test(pinecone VSTASH_WITH_PINECONE pinecone_double pinecone.yaml pinecone 8000)
