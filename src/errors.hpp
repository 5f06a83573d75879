// SPDX-License-Identifier: MIT
// Errors that stop a command, and the exit codes they map to.
#pragma once

#include <stdexcept>
#include <string>

namespace vstash {

// The process exit codes. Documented in README.md and man/vstash.1; scripts depend on them,
// so never renumber.
enum class ExitCode : int {
  ok = 0,
  fatal = 1,      // anything not classified below
  usage = 2,      // bad flag, bad input file, bad profile, malformed filter
  retryable = 3,  // server down, timeout, rate limit: the same command may succeed later
  not_found = 4,  // dataset, id, checkpoint or profile does not exist
  conflict = 5,   // already exists, dimension/metric mismatch, concurrent change
  interrupted = 130,
};

// Base class of every error vstash reports. The message is one line, lower case, context
// first (`data.npy: truncated: header says 400 bytes, file has 120`) and never contains a
// secret.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ExitCode code = ExitCode::fatal)
      : std::runtime_error(message), m_code(code) {}
  ExitCode code() const noexcept { return m_code; }

 private:
  ExitCode m_code;
};

class UsageError : public Error {
 public:
  explicit UsageError(const std::string& m) : Error(m, ExitCode::usage) {}
};
class NotFoundError : public Error {
 public:
  explicit NotFoundError(const std::string& m) : Error(m, ExitCode::not_found) {}
};
class ConflictError : public Error {
 public:
  explicit ConflictError(const std::string& m) : Error(m, ExitCode::conflict) {}
};
// The operation may succeed if retried later (connection refused, timeout, 429, 5xx).
class RetryableError : public Error {
 public:
  explicit RetryableError(const std::string& m) : Error(m, ExitCode::retryable) {}
};

}  // namespace vstash
