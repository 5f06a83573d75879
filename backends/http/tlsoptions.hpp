// SPDX-License-Identifier: MIT
// TLS for the HTTP layer: the profile's certificate files on a curl handle, and a TLS failure
// told apart from a network one (configuration: exit 2, never retried).
#pragma once

#include <curl/curl.h>

#include <string>

#include "backends/http/httpclient.hpp"

namespace vstash::backends::http {

// Sets tls_ca / tls_cert / tls_key of options on the handle (empty: libcurl's defaults).
void apply_tls_files(CURL* curl, const ClientOptions& options);
// A certificate or TLS file problem, as "tls: <which>" (empty when code is something else).
std::string tls_problem(CURLcode code, const std::string& message, const ClientOptions& options);

}  // namespace vstash::backends::http
