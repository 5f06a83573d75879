# SPDX-License-Identifier: MIT
# The test servers themselves (tests/servers/*.sh): with foreign servers on the configured
# ports, each start script starts a server of its own on another port and publishes it
# (tests/integration/servers_test.sh; its own state dir and servers, so it runs beside the rest).
if(VSTASH_WITH_REDIS AND VSTASH_WITH_PGVECTOR AND VSTASH_WITH_QDRANT AND VSTASH_WITH_PINECONE)
  add_test(NAME test_servers COMMAND bash ${PROJECT_SOURCE_DIR}/tests/integration/servers_test.sh)
  set_tests_properties(test_servers PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 300)
endif()
