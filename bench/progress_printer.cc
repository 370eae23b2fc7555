#include "bench/progress_printer.h"

#include "bench/report.h"

namespace distkv::bench {

ProgressPrinter::ProgressPrinter(std::FILE* out, bool terminal, double plain_every_s)
    : out_(out), terminal_(terminal), plain_every_s_(plain_every_s) {}

void ProgressPrinter::Show(const ProgressSample& s) {
  if (terminal_) {
    std::fprintf(out_, "\r%s\033[K", FormatProgress(s).c_str());
  } else {
    // Samples come about once a second: allow for a sample a little early.
    const bool due = !printed_ || s.preloading != last_preloading_ ||
                     s.elapsed_s - last_elapsed_s_ >= plain_every_s_ - 0.5;
    if (!due) return;
    std::fprintf(out_, "%s\n", FormatProgress(s).c_str());
    last_elapsed_s_ = s.elapsed_s;
    last_preloading_ = s.preloading;
  }
  printed_ = true;
  std::fflush(out_);
}

void ProgressPrinter::Done() {
  if (terminal_ && printed_) {
    std::fputs("\r\033[K", out_);
    std::fflush(out_);
  }
}

}  // namespace distkv::bench
