// SPDX-License-Identifier: MIT
// doctest's main, run with the scratch root of testutil.hpp.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  return context.run();
}
