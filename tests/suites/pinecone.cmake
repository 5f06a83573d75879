# SPDX-License-Identifier: MIT
# The Pinecone backend against the strict protocol double (tests/doubles/pinecone_double.py),
# started once for the area by tests/servers/pinecone_double.sh (fixture pinecone_double):
#   contract_pinecone  the backend contract suite, profile "pinecone" of the file the start
#                      script writes (one index per dimension/metric, `wait: true`, 30 ms
#                      consistency delay in the double)
#   pinecone_backend   Pinecone's own promises through the binary (tests/integration/pinecone_test.py)
# Tests use their own dataset and index names, so they run in parallel on the one double.
if(VSTASH_WITH_PINECONE)
  add_test(NAME pinecone_double_start COMMAND bash ${PROJECT_SOURCE_DIR}/tests/servers/pinecone_double.sh start)
  set_tests_properties(pinecone_double_start PROPERTIES FIXTURES_SETUP pinecone_double
                       ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 60)
  add_test(NAME pinecone_double_stop COMMAND bash ${PROJECT_SOURCE_DIR}/tests/servers/pinecone_double.sh stop)
  set_tests_properties(pinecone_double_stop PROPERTIES FIXTURES_CLEANUP pinecone_double
                       ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 60)

  add_test(NAME contract_pinecone COMMAND vstash_contract)
  set_tests_properties(contract_pinecone PROPERTIES FIXTURES_REQUIRED pinecone_double TIMEOUT 900
    ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_CONTRACT_CONFIG=${VSTASH_TEST_STATE}/pinecone.yaml;VSTASH_CONTRACT_PROFILE=pinecone")

  add_test(NAME pinecone_backend
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/pinecone_test.py)
  set_tests_properties(pinecone_backend PROPERTIES FIXTURES_REQUIRED pinecone_double TIMEOUT 900
                       ENVIRONMENT "${VSTASH_TEST_ENV}")
endif()
