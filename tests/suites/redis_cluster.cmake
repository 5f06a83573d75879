# SPDX-License-Identifier: MIT
# Redis Cluster: a real cluster of 3 masters and 3 replicas (tests/servers/redis_cluster.sh) on
# 127.0.0.1 from ${VSTASH_TEST_REDIS_CLUSTER_PORT} (twelve ports: six clients, six cluster
# buses), or from another base if one is taken (test-state/redis-cluster.port). Its profiles are
# in test-state/redis_cluster.yaml: redis_cluster (cluster: true, nodes: the six) and
# redis_cluster_node (the plain host/port of one node).
#   redis_cluster_node      tests/integration/redis_cluster_test.py: a plain host/port of one
#                           node is detected as a cluster (rows on another node's slot)
#   redis_cluster_failover  the same file: kill -9 the master of a dataset's slot during an
#                           ingest and during a batch stream; succeeds or exits 3, --resume
#                           finishes, the data read back equals the input. It starts a private
#                           cluster (its own state dir), so the shared one stays whole. Its
#                           datasets are spread over the three masters.
#   redis_cluster_spread    the same file's spread tests: one dataset over the masters
#                           (shards_per_dataset, docs/backends.md "### Redis"), its reads bit for
#                           bit, a reader beside a writer of multi-shard blocks never sees half
#                           of a write, bad shards_per_dataset values exit 2
#   sharded_ingest_redis_cluster  tests/integration/sharded_ingest_test.py on the cluster through
#                           the same file (4 ranks equal one ingest, kill -9 + --resume), each
#                           dataset it compares checked to be spread
if(NOT VSTASH_WITH_REDIS)
  return()
endif()
set(redis_cluster_script ${PROJECT_SOURCE_DIR}/tests/servers/redis_cluster.sh)
set(redis_cluster_yaml ${VSTASH_TEST_STATE}/redis_cluster.yaml)
set(redis_cluster_test ${PROJECT_SOURCE_DIR}/tests/integration/redis_cluster_test.py)

add_test(NAME redis_cluster_start COMMAND bash ${redis_cluster_script} start)
set_tests_properties(redis_cluster_start PROPERTIES FIXTURES_SETUP redis_cluster ENVIRONMENT "${VSTASH_TEST_ENV}"
  TIMEOUT 180)
add_test(NAME redis_cluster_stop COMMAND bash ${redis_cluster_script} stop)
set_tests_properties(redis_cluster_stop PROPERTIES FIXTURES_CLEANUP redis_cluster ENVIRONMENT "${VSTASH_TEST_ENV}"
  TIMEOUT 60)

# contract_redis_cluster: the backend contract suite on the cluster (profile redis_cluster);
# redis_cluster_unit: tests/unit/test_backends_redis_cluster.cpp's suite redis_cluster (a pipeline
# over the three masters, a cross-slot transaction, -ASK and -MOVED after moving one slot).
add_test(NAME contract_redis_cluster COMMAND vstash_contract)
set_tests_properties(contract_redis_cluster PROPERTIES FIXTURES_REQUIRED redis_cluster TIMEOUT 300
  ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_CONTRACT_CONFIG=${redis_cluster_yaml};VSTASH_CONTRACT_PROFILE=redis_cluster")
add_test(NAME redis_cluster_unit COMMAND vstash_unittest --test-suite=redis_cluster)
set_tests_properties(redis_cluster_unit PROPERTIES FIXTURES_REQUIRED redis_cluster TIMEOUT 300
  ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_REDIS_CLUSTER_TEST_CONFIG=${redis_cluster_yaml}")

add_test(NAME redis_cluster_node COMMAND ${Python3_EXECUTABLE} ${redis_cluster_test} plain_host_port)
set_tests_properties(redis_cluster_node PROPERTIES FIXTURES_REQUIRED redis_cluster TIMEOUT 300
  ENVIRONMENT "${VSTASH_TEST_ENV}")
add_test(NAME redis_cluster_failover COMMAND ${Python3_EXECUTABLE} ${redis_cluster_test} failover)
set_tests_properties(redis_cluster_failover PROPERTIES TIMEOUT 600 ENVIRONMENT "${VSTASH_TEST_ENV}")
add_test(NAME redis_cluster_spread COMMAND ${Python3_EXECUTABLE} ${redis_cluster_test} spread -four_ranks)
set_tests_properties(redis_cluster_spread PROPERTIES FIXTURES_REQUIRED redis_cluster TIMEOUT 600
  ENVIRONMENT "${VSTASH_TEST_ENV}")
add_test(NAME sharded_ingest_redis_cluster COMMAND ${Python3_EXECUTABLE} ${redis_cluster_test} spread_four_ranks)
set_tests_properties(sharded_ingest_redis_cluster PROPERTIES FIXTURES_REQUIRED redis_cluster TIMEOUT 900
  ENVIRONMENT "${VSTASH_TEST_ENV}")
