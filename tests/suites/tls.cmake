# SPDX-License-Identifier: MIT
# TLS for real (tests/integration/tls_test.py): certificates made at test time by
# tests/servers/tls.sh; a private PostgreSQL with ssl=on (verify-full: wrong CA, wrong host
# name, missing CA file), https to private Qdrant and Pinecone doubles (wrong CA, wrong host
# name, client certificates), and Redis TLS profiles refused. Private servers on ports the
# kernel or the start scripts pick, so it runs beside the other suites; nothing is skipped.
if(VSTASH_WITH_PGVECTOR AND VSTASH_WITH_QDRANT AND VSTASH_WITH_PINECONE AND VSTASH_WITH_REDIS)
  add_test(NAME tls COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/tls_test.py)
  set_tests_properties(tls PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 300)
endif()
