# SPDX-License-Identifier: MIT
# Redis: a real redis-server (tests/servers/redis.sh) on 127.0.0.1:${VSTASH_TEST_REDIS_PORT}, or on
# another port if that one is taken (test-state/redis.port).
#   contract_redis       the backend contract suite, profile "redis" (no ttl)
#   contract_redis_ttl   the same with ttl: 30 on every key
#   contract_local_cached  the contract suite through the cache tier (profile local_cached: a local
#                        store behind this server's cache)
#   redis_unit           tests/unit/test_backends_redis.cpp: ttl on every key, expiry, hostile
#                        names, cache tier, auth/refused errors; test_backends_cache.cpp: the cache
#                        tier's round trips, rows, memory tier, writes in progress (skipped in
#                        the plain unit run)
#   redis_cli            tests/integration/redis_test.py: the CLI's exit codes and one-line
#                        errors, OOM, a server killed mid-ingest + --resume, round trips per
#                        ingest; it starts private servers for the tests that break one
#   redis_cli_cache      the same file's cache-tier test through the CLI
if(NOT VSTASH_WITH_REDIS)
  return()
endif()
set(redis_script ${PROJECT_SOURCE_DIR}/tests/servers/redis.sh)
set(redis_yaml ${VSTASH_TEST_STATE}/redis.yaml)

add_test(NAME redis_start COMMAND bash ${redis_script} start)
set_tests_properties(redis_start PROPERTIES FIXTURES_SETUP redis ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 60)
add_test(NAME redis_stop COMMAND bash ${redis_script} stop)
set_tests_properties(redis_stop PROPERTIES FIXTURES_CLEANUP redis ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 60)

add_test(NAME contract_redis COMMAND vstash_contract)
set_tests_properties(contract_redis PROPERTIES FIXTURES_REQUIRED redis TIMEOUT 300
  ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_CONTRACT_CONFIG=${redis_yaml};VSTASH_CONTRACT_PROFILE=redis")
add_test(NAME contract_redis_ttl COMMAND vstash_contract)
set_tests_properties(contract_redis_ttl PROPERTIES FIXTURES_REQUIRED redis TIMEOUT 300
  ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_CONTRACT_CONFIG=${redis_yaml};VSTASH_CONTRACT_PROFILE=redis_ttl")
add_test(NAME contract_local_cached COMMAND vstash_contract)
set_tests_properties(contract_local_cached PROPERTIES FIXTURES_REQUIRED redis TIMEOUT 300
  ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_CONTRACT_CONFIG=${redis_yaml};VSTASH_CONTRACT_PROFILE=local_cached")

add_test(NAME redis_unit COMMAND vstash_unittest --test-suite=redis)
set_tests_properties(redis_unit PROPERTIES FIXTURES_REQUIRED redis TIMEOUT 300
  ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_REDIS_TEST_CONFIG=${redis_yaml}")

add_test(NAME redis_cli COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/redis_test.py -cache_tier)
set_tests_properties(redis_cli PROPERTIES FIXTURES_REQUIRED redis TIMEOUT 600 ENVIRONMENT "${VSTASH_TEST_ENV}")
# The cache tier through the CLI (`cache:` in a profile, stats counters, the cache-down
# warning). Needs the CLI to hand its ProfileFile to create_backend (commands/context.cpp).
add_test(NAME redis_cli_cache COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/integration/redis_test.py cache_tier)
set_tests_properties(redis_cli_cache PROPERTIES FIXTURES_REQUIRED redis TIMEOUT 300 ENVIRONMENT "${VSTASH_TEST_ENV}")
