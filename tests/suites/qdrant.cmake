# SPDX-License-Identifier: MIT
# Qdrant: the protocol double as a fixture, the backend contract suite against it, and the
# Qdrant-specific tests (point ids, byte-bounded batches, retries, strict mode, the /search
# fallback, auth, spec conformance of every request the client sent).
if(VSTASH_WITH_QDRANT)
  add_test(NAME qdrant_start COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/servers/qdrant_double.sh start)
  set_tests_properties(qdrant_start PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" FIXTURES_SETUP qdrant TIMEOUT 60)
  add_test(NAME qdrant_stop COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/servers/qdrant_double.sh stop)
  set_tests_properties(qdrant_stop PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" FIXTURES_CLEANUP qdrant TIMEOUT 60)

  add_test(NAME contract_qdrant COMMAND vstash_contract)
  set_tests_properties(contract_qdrant PROPERTIES
    ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_CONTRACT_CONFIG=${VSTASH_TEST_STATE}/qdrant.yaml;VSTASH_CONTRACT_PROFILE=qdrant"
    FIXTURES_REQUIRED qdrant RESOURCE_LOCK qdrant_shared_double TIMEOUT 600)

  # Starts its own private doubles (fault injection, strict mode, small limits, old versions)
  # on free loopback ports.
  add_test(NAME qdrant_integration
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/qdrant_test.py QdrantTest)
  set_tests_properties(qdrant_integration PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}"
    FIXTURES_REQUIRED qdrant TIMEOUT 900)
  # After the contract run: every request the client sent to the shared double matched an
  # operation of the OpenAPI spec (method, path, query parameters, required/unknown fields).
  add_test(NAME qdrant_spec_conformance
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/qdrant_test.py SharedDoubleConformance)
  set_tests_properties(qdrant_spec_conformance PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}"
    FIXTURES_REQUIRED qdrant DEPENDS "contract_qdrant;contract_qdrant_sharded;qdrant_integration" TIMEOUT 60)
  # The double checks requests against tests/doubles/qdrant_spec.json; this compares that file
  # with what make_qdrant_spec.py extracts from the official spec in ../shared/specs. Without
  # ../shared it says so in one line and is skipped (exit 77), except under CI=true.
  add_test(NAME qdrant_spec_current
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/doubles/make_qdrant_spec.py --check)
  set_tests_properties(qdrant_spec_current PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" SKIP_RETURN_CODE 77 TIMEOUT 60)
endif()
