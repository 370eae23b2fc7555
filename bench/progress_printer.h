// How distkv-bench shows its progress while it runs (on stderr).
//
// On a terminal: one line rewritten in place every second ("\r", then erase
// to the end of the line), cleared when the run ends, so the summary that
// follows stands alone. Anywhere else (a log file, a pipe, CI): a plain line
// every few seconds and whenever the phase changes (preload, then the run),
// so a log shows that the run is alive without a line a second or a single
// line full of carriage returns.
#pragma once

#include <cstdio>

#include "bench/runner.h"

namespace distkv::bench {

class ProgressPrinter {
 public:
  ProgressPrinter(std::FILE* out, bool terminal, double plain_every_s = 5);
  void Show(const ProgressSample& sample);
  // At the end of the run: a terminal's live line is erased.
  void Done();

 private:
  std::FILE* out_;
  bool terminal_;
  double plain_every_s_;
  bool printed_ = false;
  bool last_preloading_ = false;
  double last_elapsed_s_ = 0;
};

}  // namespace distkv::bench
