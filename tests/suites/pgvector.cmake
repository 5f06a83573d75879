# SPDX-License-Identifier: MIT
# The pgvector backend against a real PostgreSQL 15 + pgvector server (issue 3, item 7).
#   pg_start / pg_stop     the fixture: tests/servers/postgres.sh starts a throwaway cluster on
#                          127.0.0.1:${VSTASH_TEST_PG_PORT} (another port if that one is taken:
#                          test-state/pg.port) and writes test-state/pgvector.yaml
#   contract_pgvector      the backend contract suite with profile "pg"
#   pgvector_unit          pgvector-specific doctest cases (tests/unit/test_backends_pgvector.cpp,
#                          skipped by the plain `unit` run, selected here with --no-skip)
#   pgvector_integration   through the CLI: resume after kill -9 and after a server restart,
#                          error lines and exit codes; it restarts the server, so RUN_SERIAL
#   pgvector_replica       read_replicas against a streaming replica that the test starts and
#                          stops (tests/servers/postgres_replica.sh): reads served by the replica
#                          (its replay paused), writes on the primary, an unreachable replica
# A missing server fails these tests; nothing is skipped.
if(VSTASH_WITH_PGVECTOR)
  set(pg_profile_env "VSTASH_CONTRACT_CONFIG=${VSTASH_TEST_STATE}/pgvector.yaml;VSTASH_CONTRACT_PROFILE=pg")

  add_test(NAME pg_start COMMAND bash ${PROJECT_SOURCE_DIR}/tests/servers/postgres.sh start)
  set_tests_properties(pg_start PROPERTIES FIXTURES_SETUP pg ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 120)
  add_test(NAME pg_stop COMMAND bash ${PROJECT_SOURCE_DIR}/tests/servers/postgres.sh stop)
  set_tests_properties(pg_stop PROPERTIES FIXTURES_CLEANUP pg ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 120)

  add_test(NAME contract_pgvector COMMAND vstash_contract)
  set_tests_properties(contract_pgvector PROPERTIES FIXTURES_REQUIRED pg
                       ENVIRONMENT "${VSTASH_TEST_ENV};${pg_profile_env}" TIMEOUT 600)

  add_test(NAME pgvector_unit COMMAND vstash_unittest --test-suite=backends::pgvector --no-skip)
  set_tests_properties(pgvector_unit PROPERTIES FIXTURES_REQUIRED pg
                       ENVIRONMENT "${VSTASH_TEST_ENV};${pg_profile_env}" TIMEOUT 600)

  add_test(NAME pgvector_integration
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/pgvector_test.py)
  set_tests_properties(pgvector_integration PROPERTIES FIXTURES_REQUIRED pg RUN_SERIAL TRUE
                       ENVIRONMENT "${VSTASH_TEST_ENV};${pg_profile_env}" TIMEOUT 900)

  add_test(NAME pgvector_replica
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/pgvector_replica_test.py)
  set_tests_properties(pgvector_replica PROPERTIES FIXTURES_REQUIRED pg RUN_SERIAL TRUE
                       ENVIRONMENT "${VSTASH_TEST_ENV};${pg_profile_env}" TIMEOUT 300)
endif()
