# SPDX-License-Identifier: MIT
# The Python API (issue 19): tests/python (pytest) against the module in
# ${VSTASH_PYTHON_BUILD_DIR}, once per store:
#   python_local     a fresh local store in a temp dir, plus the binding's own tests (references
#                    and memory over 10,000 calls, Ctrl-C in a loader loop, help text)
#   python_pgvector / python_redis / python_qdrant / python_pinecone
#                    the same methods against the server each area's fixture starts, through
#                    the profile file its start script writes (VSTASH_PY_CONFIG/VSTASH_PY_PROFILE)
# pytest exits 5 when it collects nothing, which CTest counts as a failure like any non-zero
# status. With VSTASH_SANITIZE the module needs the ASan runtime loaded first: python3 runs
# with LD_PRELOAD of the compiler's libasan (and libstdc++, see below) and without leak
# checking (CPython's own allocations at exit are not leaks of ours).
if(NOT VSTASH_PYTHON)
  return()
endif()
set(python_env ${VSTASH_TEST_ENV} "PYTHONPATH=${VSTASH_PYTHON_BUILD_DIR}" "PYTHONDONTWRITEBYTECODE=1")
if(VSTASH_SANITIZE)
  # libstdc++ is preloaded too: python3 does not link it, and ASan looks up the real
  # __cxa_throw when it starts; without it the first C++ exception aborts the process
  # ("CHECK failed: ... real___cxa_throw != 0").
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libasan.so OUTPUT_VARIABLE asan_runtime
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libstdc++.so OUTPUT_VARIABLE cxx_runtime
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND python_env "LD_PRELOAD=${asan_runtime}:${cxx_runtime}" "ASAN_OPTIONS=detect_leaks=0")
endif()
set(pytest_command ${Python3_EXECUTABLE} -m pytest -q -p no:cacheprovider ${PROJECT_SOURCE_DIR}/tests/python)

add_test(NAME python_local COMMAND ${pytest_command})
set_tests_properties(python_local PROPERTIES TIMEOUT 900
                     ENVIRONMENT "${python_env};VSTASH_PY_CONFIG=;VSTASH_PY_PROFILE=")

function(vstash_python_test backend option fixture profile_file profile)
  if(${option})
    add_test(NAME python_${backend} COMMAND ${pytest_command})
    set_tests_properties(python_${backend} PROPERTIES FIXTURES_REQUIRED ${fixture} TIMEOUT 1200
      ENVIRONMENT "${python_env};VSTASH_PY_CONFIG=${VSTASH_TEST_STATE}/${profile_file};VSTASH_PY_PROFILE=${profile}")
  endif()
endfunction()
vstash_python_test(pgvector VSTASH_WITH_PGVECTOR pg pgvector.yaml pg)
vstash_python_test(redis VSTASH_WITH_REDIS redis redis.yaml redis)
vstash_python_test(qdrant VSTASH_WITH_QDRANT qdrant qdrant.yaml qdrant)
vstash_python_test(pinecone VSTASH_WITH_PINECONE pinecone_double pinecone.yaml pinecone)
