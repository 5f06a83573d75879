// SPDX-License-Identifier: MIT
// A progress bar on stderr for long transfers (ingest, export). Callers decide whether it is
// shown: only when stderr is a terminal and neither --quiet, --json nor --no-progress is set,
// so pipelines and logs never see carriage returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace vstash {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Sets the number of units done; redraws at most ten times a second.
  void update(int64_t done);
  // Draws the final state and ends the line.
  void finish();

 private:
  void draw(bool force);
  std::string m_label;
  int64_t m_total;
  int64_t m_done = 0;
  int64_t m_base = 0;  // done at the first update, where the rate starts
  bool m_updated = false;
  bool m_enabled;
  bool m_finished = false;
  std::chrono::steady_clock::time_point m_start;
  std::chrono::steady_clock::time_point m_last_draw;
};

// True when stderr is a terminal: the precondition for drawing a bar.
bool stderr_is_tty();

}  // namespace vstash
