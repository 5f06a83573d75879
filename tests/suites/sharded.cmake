# SPDX-License-Identifier: MIT
# `vstash ingest --rank R --world-size W` (issue 20 line 4), once per store:
#   sharded_ingest_<store>   tests/integration/sharded_ingest_test.py: 4 ranks started at once
#                            equal one process byte for byte (export, next_index); kill -9 of a
#                            rank then --resume; flag errors. The store is the profile its
#                            fixture writes (VSTASH_SHARD_CONFIG/VSTASH_SHARD_PROFILE; empty: local).
# Pinecone: fewer rows for the kill test (a slow double). Pinecone and Qdrant: the catalog record has no atomic
# compare-and-set, so they take one writer per dataset and the test checks that --world-size 4
# is refused there (atomic_catalog 0).
add_test(NAME sharded_ingest_local
         COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/sharded_ingest_test.py)
set_tests_properties(sharded_ingest_local PROPERTIES TIMEOUT 900
                     ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_SHARD_CONFIG=;VSTASH_SHARD_PROFILE=")

function(vstash_sharded_ingest_test store option fixture profile_file profile kill_rows atomic_catalog)
  if(${option})
    add_test(NAME sharded_ingest_${store}
             COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/sharded_ingest_test.py)
    set_tests_properties(sharded_ingest_${store} PROPERTIES FIXTURES_REQUIRED ${fixture} TIMEOUT 900
      ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_SHARD_CONFIG=${VSTASH_TEST_STATE}/${profile_file};VSTASH_SHARD_PROFILE=${profile};VSTASH_SHARD_KILL_ROWS=${kill_rows};VSTASH_SHARD_ATOMIC_CATALOG=${atomic_catalog}")
  endif()
endfunction()
vstash_sharded_ingest_test(pgvector VSTASH_WITH_PGVECTOR pg pgvector.yaml pg 24000 1)
vstash_sharded_ingest_test(redis VSTASH_WITH_REDIS redis redis.yaml redis 24000 1)
vstash_sharded_ingest_test(qdrant VSTASH_WITH_QDRANT qdrant qdrant.yaml qdrant 24000 0)
vstash_sharded_ingest_test(pinecone VSTASH_WITH_PINECONE pinecone_double pinecone.yaml pinecone 2000 0)
