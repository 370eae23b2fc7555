// ProgressBar: a long operation's progress on the command line (distkv
// reshard/rebalance, compact, status --wait).
//
// On a terminal the line is redrawn in place ("\r", erase to the end of the
// line), after a bar when the share done is known:
//
//   [#########...........]  45% compaction of Delhi on 127.0.0.2:8080: 12.0 MB of 26.6 MB
//
// Anywhere else (a pipe, a log file, a CI job) each update would be a new
// line, so the line is printed only when it says something new (changed: a
// new phase) or every plain_every_s seconds, without the bar; the share is
// part of the line itself. kOff (--no-progress) prints no progress at all,
// only what Done() is given. The output is stderr by convention: stdout
// keeps the command's result for scripts.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace distkv {

class ProgressBar {
 public:
  enum class Mode { kTerminal, kPlain, kOff };
  // kTerminal when out is a terminal, else kPlain; kOff when no_progress.
  static Mode ModeFor(FILE* out, bool no_progress);

  ProgressBar(FILE* out, Mode mode, double plain_every_s = 5);

  // share: done / total in [0, 1], or negative when unknown.
  void Show(double share, const std::string& line, bool changed);
  // Erases the live line (on a terminal) so that a normal line can follow.
  void Clear();
  // Clear(), then line as a line of its own (whatever the mode).
  void Done(const std::string& line);

  Mode mode() const { return mode_; }

 private:
  FILE* out_;
  Mode mode_;
  double plain_every_s_;
  bool live_ = false;  // a terminal line is drawn
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_plain_;
};

// "512 B", "12.0 KB", "3.4 MB", "1.2 GB" (powers of 1024).
std::string HumanBytes(uint64_t bytes);

}  // namespace distkv
