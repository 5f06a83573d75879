// SPDX-License-Identifier: MIT
#include "backends/http/httptext.hpp"

#include <cctype>

#include <nlohmann/json.hpp>

#include "src/util/scrub.hpp"

namespace vstash::backends::http {

namespace {

constexpr size_t k_max_message_chars = 300;

// The message field of a JSON error body, "" when there is none.
std::string json_message(const std::string& body) {
  try {
    auto j = nlohmann::json::parse(body);
    if (!j.is_object()) {
      return "";
    }
    if (j.contains("status") && j["status"].is_object() && j["status"].contains("error")) {
      return j["status"]["error"].is_string() ? j["status"]["error"].get<std::string>() : j["status"]["error"].dump();
    }
    if (j.contains("error") && j["error"].is_object() && j["error"].contains("message")) {
      const auto& m = j["error"]["message"];
      return m.is_string() ? m.get<std::string>() : m.dump();
    }
    if (j.contains("message") && j["message"].is_string()) {
      return j["message"].get<std::string>();
    }
    if (j.contains("error") && j["error"].is_string()) {
      return j["error"].get<std::string>();
    }
  } catch (const nlohmann::json::exception&) {
  }
  return "";
}

}  // namespace

std::string lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) {
    ++b;
  }
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) {
    --e;
  }
  return std::string(s.substr(b, e - b));
}

std::string server_message(const std::string& body, const std::vector<std::pair<std::string, std::string>>& secrets) {
  std::string text = json_message(body);
  if (text.empty()) {
    text = body;
  }
  for (auto& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    }
  }
  text = trim(text);
  std::vector<std::string> values;
  for (const auto& [name, value] : secrets) {
    if (value.size() >= 4) {  // every default header is passed; short ones are no secrets
      values.push_back(value);
    }
  }
  text = util::scrub_secrets(std::move(text), std::move(values));
  if (text.size() > k_max_message_chars) {
    text = text.substr(0, k_max_message_chars) + "...";
  }
  return text;
}

}  // namespace vstash::backends::http
