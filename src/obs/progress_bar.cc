// The command line's progress display; see progress_bar.h.
#include "src/obs/progress_bar.h"

#include <unistd.h>

#include <algorithm>

namespace distkv {

ProgressBar::Mode ProgressBar::ModeFor(FILE* out, bool no_progress) {
  if (no_progress) return Mode::kOff;
  return isatty(fileno(out)) ? Mode::kTerminal : Mode::kPlain;
}

ProgressBar::ProgressBar(FILE* out, Mode mode, double plain_every_s)
    : out_(out), mode_(mode), plain_every_s_(plain_every_s) {}

void ProgressBar::Show(double share, const std::string& line, bool changed) {
  if (mode_ == Mode::kOff) return;
  if (mode_ == Mode::kTerminal) {
    if (share >= 0) {
      constexpr int kWidth = 20;
      const double s = std::min(share, 1.0);
      std::string bar(static_cast<size_t>(s * kWidth), '#');
      bar.resize(kWidth, '.');
      std::fprintf(out_, "\r\033[K[%s] %3.0f%% %s", bar.c_str(), s * 100, line.c_str());
    } else {
      std::fprintf(out_, "\r\033[K%s", line.c_str());
    }
    std::fflush(out_);
    live_ = true;
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (shown_ && !changed &&
      std::chrono::duration<double>(now - last_plain_).count() < plain_every_s_) {
    return;
  }
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
  shown_ = true;
  last_plain_ = now;
}

void ProgressBar::Clear() {
  if (!live_) return;
  std::fprintf(out_, "\r\033[K");
  live_ = false;
}

void ProgressBar::Done(const std::string& line) {
  Clear();
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

std::string HumanBytes(uint64_t bytes) {
  char buf[32];
  const double b = static_cast<double>(bytes);
  if (bytes >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GB", b / (1ull << 30));
  } else if (bytes >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MB", b / (1 << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KB", b / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  }
  return buf;
}

}  // namespace distkv
