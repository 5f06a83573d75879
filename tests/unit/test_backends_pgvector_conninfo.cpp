// SPDX-License-Identifier: MIT
// libpq's conninfo from the profile's settings (no server needed): TLS files and sslmode.
#ifdef VSTASH_HAVE_PGVECTOR
#include <doctest/doctest.h>

#include <string>

#include "backends/pgvector/pgconnection.hpp"

using vstash::backends::pgvector::build_conninfo;
using vstash::backends::pgvector::ConnectionSettings;

TEST_SUITE("backends::pgvector::conninfo") {
  TEST_CASE("tls_ca, tls_cert and tls_key become sslrootcert, sslcert and sslkey") {
    ConnectionSettings s;
    s.sslmode = "verify-ca";
    s.tls_ca = "/etc/ssl/ca.pem";
    s.tls_cert = "/home/u/client.pem";
    s.tls_key = "/home/u/it's.key";
    const std::string ci = build_conninfo(s);
    CHECK(ci.find(" sslmode='verify-ca'") != std::string::npos);
    CHECK(ci.find(" sslrootcert='/etc/ssl/ca.pem'") != std::string::npos);
    CHECK(ci.find(" sslcert='/home/u/client.pem'") != std::string::npos);
    CHECK(ci.find(" sslkey='/home/u/it\\'s.key'") != std::string::npos);
  }

  TEST_CASE("a CA without sslmode means verify-full; no TLS keys leave libpq's defaults") {
    ConnectionSettings s;
    s.tls_ca = "ca.pem";
    CHECK(build_conninfo(s).find(" sslmode='verify-full'") != std::string::npos);
    const std::string plain = build_conninfo(ConnectionSettings{});
    CHECK(plain.find("sslmode") == std::string::npos);
    CHECK(plain.find("sslrootcert") == std::string::npos);
  }
}
#endif
