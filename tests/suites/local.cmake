# SPDX-License-Identifier: MIT
# The local store's own promises (kill -9 mid-ingest + --resume, readers beside a writer,
# refused ingests change nothing), through the built binary.
add_test(NAME local_store COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/local_store_test.py)
set_tests_properties(local_store PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 900)
