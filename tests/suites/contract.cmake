# SPDX-License-Identifier: MIT
# The backend contract suite against the local store. With neither VSTASH_CONTRACT_CONFIG nor
# VSTASH_CONTRACT_PROFILE set, vstash_contract uses a fresh local store in its scratch dir.
# Other backends register their own contract_<backend> entries in their suite files.
add_test(NAME contract_local COMMAND vstash_contract)
set_tests_properties(contract_local PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_CONTRACT_CONFIG=;VSTASH_CONTRACT_PROFILE=" TIMEOUT 300)
