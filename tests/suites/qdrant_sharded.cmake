# SPDX-License-Identifier: MIT
# Qdrant with custom sharding (profile shard_key: auto, docs/backends.md "Scaling out"): the
# backend contract suite on the shared Qdrant double (the qdrant fixture of qdrant.cmake), with
# datasets placed under shard keys of shared collections. Its profile file is written from the
# fixture's qdrant.yaml: the `qdrant` profile plus shard_key, shard_number and replication keys.
if(VSTASH_WITH_QDRANT)
  add_test(NAME qdrant_sharded_profile
    COMMAND ${Python3_EXECUTABLE} -c
      "import os,sys; s=os.environ['VSTASH_TEST_STATE']; t=open(s+'/qdrant.yaml').read(); i=t.index('  qdrant:'); j=t.index('  qdrant_badkey:'); p=t[i:j].replace('  qdrant:','  qdrant_sharded:',1).rstrip('\\n')+'\\n    shard_key: auto\\n    shard_number: 2\\n    replication_factor: 2\\n    write_consistency_factor: 1\\n    consistency: majority\\n    ordering: medium\\n'; open(s+'/qdrant_sharded.yaml','w').write('profiles:\\n'+p)")
  set_tests_properties(qdrant_sharded_profile PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}"
    FIXTURES_REQUIRED qdrant FIXTURES_SETUP qdrant_sharded TIMEOUT 60)
  add_test(NAME contract_qdrant_sharded COMMAND vstash_contract)
  set_tests_properties(contract_qdrant_sharded PROPERTIES
    ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_CONTRACT_CONFIG=${VSTASH_TEST_STATE}/qdrant_sharded.yaml;VSTASH_CONTRACT_PROFILE=qdrant_sharded"
    FIXTURES_REQUIRED "qdrant;qdrant_sharded" RESOURCE_LOCK qdrant_shared_double DEPENDS contract_qdrant TIMEOUT 600)
endif()
