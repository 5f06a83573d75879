# SPDX-License-Identifier: MIT
# The array file layer (src/io): NPY, HDF5, JSONL and atomic writes.
#   io_unit     the doctest suites io::* (tests/unit/test_io_*.cpp)
#   io_interop  files written by numpy/h5py read by vstash and the other way round, through
#               vstash_iotool (src/io directly) and the vstash binary (ingest + export)
add_executable(vstash_iotool ${CMAKE_CURRENT_SOURCE_DIR}/tools/iotool.cpp)
target_link_libraries(vstash_iotool PRIVATE vstash_core vstash_settings)
target_include_directories(vstash_iotool PRIVATE ${PROJECT_SOURCE_DIR})

# The io::* doctest suites also build alone, so they run whichever backends are compiled in
# (they are in vstash_unittest too, through its glob).
file(GLOB io_unit_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_io_*.cpp)
add_executable(vstash_io_unittest ${io_unit_sources} ${CMAKE_CURRENT_SOURCE_DIR}/unit/main.cpp
               ${CMAKE_CURRENT_SOURCE_DIR}/testutil.cpp)
target_link_libraries(vstash_io_unittest PRIVATE vstash_core vstash_settings doctest::doctest)
target_include_directories(vstash_io_unittest PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})

add_test(NAME io_unit COMMAND vstash_io_unittest -ts=io*)
set_tests_properties(io_unit PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}")

add_test(NAME io_interop
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/interop_test.py)
set_tests_properties(io_interop PROPERTIES
  ENVIRONMENT "${VSTASH_TEST_ENV};VSTASH_IOTOOL=$<TARGET_FILE:vstash_iotool>"
  TIMEOUT 900)
