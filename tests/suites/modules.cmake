# SPDX-License-Identifier: MIT
# The executable's shared modules (src/util/module.hpp): what each command maps, each module
# loading whole, and the one-line error of a missing module (tests/integration/modules_test.py).
add_test(NAME modules COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/modules_test.py -v)
set_tests_properties(modules PROPERTIES ENVIRONMENT "${VSTASH_TEST_ENV}" TIMEOUT 300 LABELS cli)
