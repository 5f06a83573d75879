# SPDX-License-Identifier: MIT
# House rules a newcomer can see (CONTRIBUTING.md), checked on the source tree in seconds:
#   format         scripts/check-format.sh: every tracked .cpp/.hpp satisfies .clang-format
#   include_style  tests/tools/check_includes.py style: #include "..." from the repository root
#   layers         tests/tools/check_includes.py layers: src -> backends -> workflows ->
#                  commands and python, arrows down only
#   comment_paths  tests/tools/check_comment_paths.py: comments name files that exist
#   function_length  tests/tools/long_functions.py: no function over 80 lines, no file over
#                  600, in src/, backends/, workflows/, commands/ and python/
#   house_checks   tests/tools/house_checks_test.py: each check above fails on a tree that
#                  breaks its rule
add_test(NAME format COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check-format.sh ${PROJECT_SOURCE_DIR})
add_test(NAME include_style
         COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/tools/check_includes.py style ${PROJECT_SOURCE_DIR})
add_test(NAME layers
         COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/tools/check_includes.py layers ${PROJECT_SOURCE_DIR})
add_test(NAME comment_paths
         COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/tools/check_comment_paths.py ${PROJECT_SOURCE_DIR})
add_test(NAME function_length
         COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/tools/long_functions.py --max-lines 80
                 --max-file-lines 600)
add_test(NAME house_checks COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/tools/house_checks_test.py -v)
set_tests_properties(format include_style layers comment_paths function_length house_checks PROPERTIES
                     ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 120 LABELS house)
