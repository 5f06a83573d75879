// SPDX-License-Identifier: MIT
// Secrets out of text that may quote them (a server's error message, a connection string): the
// one rule every store uses before a message reaches the user.
#pragma once

#include <string>
#include <vector>

namespace vstash::util {

// `text` with every occurrence of every non-empty secret replaced by "***". The search goes on
// after each replacement, so a secret that "***" contains (say "*") cannot loop, and a longer
// secret is replaced before a shorter one it contains, so no part of it is left.
std::string scrub_secrets(std::string text, std::vector<std::string> secrets);

}  // namespace vstash::util
