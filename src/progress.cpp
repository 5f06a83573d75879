// SPDX-License-Identifier: MIT
// Progress bar drawing.
#include "src/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <algorithm>
#include <cstdio>

namespace vstash {

bool stderr_is_tty() { return isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : m_label(std::move(label)),
      m_total(std::max<int64_t>(total, 0)),
      m_enabled(enabled),
      m_start(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  // An exception unwinding past the bar still needs the line ended before the error message.
  if (m_enabled && !m_finished && m_done > 0) {
    std::fputc('\n', stderr);
  }
}

void ProgressBar::update(int64_t done) {
  if (!m_updated) {
    // The rate counts from the first update: work done before the bar existed (an index
    // build already under way) would otherwise show as done in no time.
    m_updated = true;
    m_base = done;
    m_start = std::chrono::steady_clock::now();
  }
  m_done = done;
  draw(false);
}

void ProgressBar::finish() {
  if (m_finished) {
    return;
  }
  draw(true);
  if (m_enabled) {
    std::fputc('\n', stderr);
  }
  m_finished = true;
}

void ProgressBar::draw(bool force) {
  if (!m_enabled) {
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - m_last_draw < std::chrono::milliseconds(100)) {
    return;
  }
  m_last_draw = now;
  constexpr int k_width = 30;
  const double frac = m_total > 0 ? std::min(1.0, static_cast<double>(m_done) / static_cast<double>(m_total)) : 1.0;
  const int filled = static_cast<int>(frac * k_width);
  const double secs = std::chrono::duration<double>(now - m_start).count();
  // No rate until there is enough time behind it to mean something.
  const std::string rate =
      secs >= 0.5 ? fmt::format("{:.0f}/s ", static_cast<double>(m_done - m_base) / secs) : std::string("      ");
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(k_width, '.');
  std::fputs(fmt::format("\r{} [{}] {:5.1f}% {}/{} {}", m_label, bar, frac * 100, m_done, m_total, rate).c_str(),
             stderr);
  std::fflush(stderr);
}

}  // namespace vstash
