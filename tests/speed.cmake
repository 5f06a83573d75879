# SPDX-License-Identifier: MIT
# What makes the sanitized test run (scripts/test.sh, CI) faster without changing what any test
# checks. Included last by tests/CMakeLists.txt, once every program and test exists.

# Sanitized programs are linked without PIE. ASan and UBSan metadata holds about 2.4 million
# pointers (58 MB of relocations in vstash) that the loader would relocate at every start of a
# PIE: about 60 ms of CPU and 16,000 page faults per run, and the integration tests start the
# binary thousands of times. -no-pie resolves them at link time; the sanitizers work the same.
if(VSTASH_SANITIZE)
  foreach(program vstash vstash_unittest vstash_contract vstash_fuzz_replay vstash_iotool)
    if(TARGET ${program})
      target_link_options(${program} PRIVATE -no-pie)
    endif()
  endforeach()
endif()

# ctest -j starts the tests that are ready in decreasing COST, so the long ones start first and
# none runs alone at the end. A fresh clone (CI) has no Testing/Temporary/CTestCostData.txt, so
# without these every test costs 0 and they start in registration order. Seconds of a CI run
# (ASan, 2 cores), rounded; only their order matters.
set(vstash_test_costs
  training_pinecone 60 contract_pinecone 60 cli_completions_and_man 60 sharded_ingest_pinecone 50
  pinecone_backend 50 python_pinecone 45 copy_check 44 training_qdrant 43 sharded_ingest_qdrant 39
  redis_cluster_failover 39 training_pgvector 38 training_redis 32 pgvector_integration 31
  qdrant_integration 30 training_local 28 io_interop 26 local_index 25 copy_check_all_pairs 23
  local_segments 23 test_servers 20 export_memory 20 sharded_ingest_pgvector 19 unit 18
  sharded_ingest_local 15 python_pgvector 14 python_local 14 cli_ExitCodesAndErrors 14 cli_hostile_input 13)
while(vstash_test_costs)
  list(POP_FRONT vstash_test_costs test cost)
  if(TEST ${test})
    set_tests_properties(${test} PROPERTIES COST ${cost})
  endif()
endwhile()
