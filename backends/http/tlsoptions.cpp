// SPDX-License-Identifier: MIT
#include "backends/http/tlsoptions.hpp"

#include <fmt/format.h>

#include "src/errors.hpp"
#include "src/profile.hpp"

namespace vstash::backends::http {

void apply_tls_files(CURL* curl, const ClientOptions& options) {
  if (!options.tls_ca.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options.tls_ca.c_str());
  }
  if (!options.tls_cert.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, options.tls_cert.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, options.tls_key.c_str());
  }
}

// A server that refuses our client certificate (or wants one) says so with a TLS alert, which
// libcurl reports as a handshake or receive error (TLS 1.3 sends it after the handshake):
// told apart by the alert's text.
std::string tls_problem(CURLcode code, const std::string& message, const ClientOptions& o) {
  if ((code == CURLE_SSL_CONNECT_ERROR || code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR) &&
      (message.find("alert certificate required") != std::string::npos ||
       message.find("alert bad certificate") != std::string::npos ||
       message.find("alert unknown ca") != std::string::npos)) {
    return o.tls_cert.empty()
               ? "tls: the server wants a client certificate (set tls_cert and tls_key)"
               : fmt::format("tls: the server refused the client certificate tls_cert \"{}\"", o.tls_cert);
  }
  const std::string ca = o.tls_ca.empty() ? "the system CA bundle" : fmt::format("tls_ca \"{}\"", o.tls_ca);
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:  // also CURLE_SSL_CACERT: wrong host name or wrong CA
      if (message.find("host name") != std::string::npos || message.find("subject name") != std::string::npos) {
        return "tls: the server's certificate does not name the host";
      }
      return fmt::format("tls: the server's certificate does not verify against {}", ca);
    case CURLE_SSL_CACERT_BADFILE:
      return fmt::format("tls: cannot use {}", ca);
    case CURLE_SSL_CERTPROBLEM:
      return fmt::format("tls: cannot use the client certificate tls_cert \"{}\" with tls_key \"{}\"", o.tls_cert,
                         o.tls_key);
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return "tls: the server's certificate was refused";
    default:
      return "";
  }
}

void set_tls_files(ClientOptions& options, const Profile& profile) {
  options.tls_ca = profile.get_string("tls_ca", "");
  options.tls_cert = profile.get_string("tls_cert", "");
  options.tls_key = profile.get_string("tls_key", "");
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    throw UsageError(fmt::format("profile \"{}\" ({}): tls_cert and tls_key go together: set both or neither",
                                 profile.name(), profile.source()));
  }
}

}  // namespace vstash::backends::http
