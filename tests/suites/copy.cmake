# SPDX-License-Identifier: MIT
# `vstash copy` and `vstash check` (issue 18) between every ordered pair of local, pgvector,
# Redis and the Qdrant double, with real servers: tests/integration/copy_test.py (bit-for-bit
# round trips, check finding changed/missing/extra rows, kill -9 + --resume on local -> pgvector
# and pgvector -> Redis, dry run, conflicts, checkpoints). Needs all three server fixtures; a
# build without one of those backends does not register it (nothing is skipped at run time).
if(VSTASH_WITH_PGVECTOR AND VSTASH_WITH_REDIS AND VSTASH_WITH_QDRANT)
  add_test(NAME copy_check COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/copy_test.py)
  set_tests_properties(copy_check PROPERTIES FIXTURES_REQUIRED "pg;redis;qdrant" TIMEOUT 900
                       ENVIRONMENT "${VSTASH_TEST_ENV}")
endif()
# All 25 ordered pairs of the five stores, the Pinecone double included (12 s here).
if(VSTASH_WITH_PGVECTOR AND VSTASH_WITH_REDIS AND VSTASH_WITH_QDRANT AND VSTASH_WITH_PINECONE)
  add_test(NAME copy_check_all_pairs
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/copy_test.py AllPairs.test_all_25_pairs)
  set_tests_properties(copy_check_all_pairs PROPERTIES FIXTURES_REQUIRED "pg;redis;qdrant;pinecone_double"
                       TIMEOUT 900 ENVIRONMENT "${VSTASH_TEST_ENV}")
endif()
