# SPDX-License-Identifier: MIT
# The local store's own promises (kill -9 mid-ingest + --resume, readers beside a writer,
# refused ingests change nothing), through the built binary.
add_test(NAME local_store COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/local_store_test.py)
set_tests_properties(local_store PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 900)
# Read commands open the store read-only: a store in a read-only file and directory can be
# read (as user nobody under root), and a mistyped path is exit 4, never a new store.
add_test(NAME local_readonly COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/local_readonly_test.py)
set_tests_properties(local_readonly PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 300)

# The local HNSW index (issue 16 line 3): built by ingest above hnsw_min_rows, used by query
# (recall, exact scores), filtered k hits, stale after a write (exact answers) and `vstash index`.
add_test(NAME local_index COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/local_index_test.py)
set_tests_properties(local_index PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 600)
# Segment files (layout 2): upserts, deletes and compactions under kill -9 with a reader
# checking every row it sees, two writers, automatic compaction and the sweep of orphan
# files, migration of a layout 1 store made by SQL.
add_test(NAME local_segments COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/local_segments_test.py)
set_tests_properties(local_segments PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 900)
# Implicit rows (layout 3): kill -9 mid-ingest + --resume keeps every row implicit, no
# duplicate, no gap; update, delete and compaction of implicit rows.
add_test(NAME local_implicit COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/local_implicit_test.py)
set_tests_properties(local_implicit PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 600)
