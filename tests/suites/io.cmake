# SPDX-License-Identifier: MIT
# The array file layer (src/io): NPY, HDF5, JSONL and atomic writes.
#   (the doctest suites io::* in tests/unit/test_io_*.cpp run in the `unit` test)
#   io_interop  files written by numpy/h5py read by vstash and the other way round, through
#               vstash_iotool (src/io directly) and the vstash binary (ingest + export)
add_executable(vstash_iotool ${CMAKE_CURRENT_SOURCE_DIR}/tools/iotool.cpp)
target_link_libraries(vstash_iotool PRIVATE vstash_core vstash_settings)
target_include_directories(vstash_iotool PRIVATE ${PROJECT_SOURCE_DIR})

add_test(NAME io_interop
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/interop_test.py)
set_tests_properties(io_interop PROPERTIES
  ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_IOTOOL=$<TARGET_FILE:vstash_iotool>"
  TIMEOUT 900)

# export_memory  export of 150k x 128 rows (local store and Redis) stays under a bounded
#                anonymous memory peak and writes the rows ingested (NPY and HDF5)
if(VSTASH_WITH_REDIS)
  add_test(NAME export_memory
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/export_memory_test.py)
  set_tests_properties(export_memory PROPERTIES FIXTURES_REQUIRED redis ENVIRONMENT "${VSTASH_TEST_ENV}"
                       TIMEOUT 900)
endif()
