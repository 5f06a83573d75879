// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vstash::util {

std::string base64_encode(std::span<const std::byte> bytes);
// Throws vstash::Error on invalid input.
std::vector<std::byte> base64_decode(std::string_view text);

}  // namespace vstash::util
