// ProgressBar: plain lines off a terminal (one per phase, throttled between),
// the bar redrawn in place on a terminal, nothing but the final line with
// --no-progress.
#include "src/obs/progress_bar.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

namespace distkv {
namespace {

// What was written to a temporary file.
std::string Written(FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  return out;
}

TEST_CASE("ProgressBar plain: a line per phase, repeats throttled, the final line") {
  FILE* f = std::tmpfile();
  REQUIRE(f);
  ProgressBar bar(f, ProgressBar::Mode::kPlain, /*plain_every_s=*/3600);
  bar.Show(0.1, "copying 10%", true);
  bar.Show(0.2, "copying 20%", false);  // same phase, too soon: not printed
  bar.Show(0.9, "repointing", true);
  bar.Done("done: 3 segments into 1");
  CHECK(Written(f) == "copying 10%\nrepointing\ndone: 3 segments into 1\n");
  std::fclose(f);
}

TEST_CASE("ProgressBar terminal: one line redrawn with a bar, erased before the final line") {
  FILE* f = std::tmpfile();
  REQUIRE(f);
  ProgressBar bar(f, ProgressBar::Mode::kTerminal);
  bar.Show(0.5, "half", false);
  bar.Show(-1, "unknown", false);
  bar.Done("end");
  CHECK(Written(f) == "\r\033[K[##########..........]  50% half\r\033[Kunknown\r\033[Kend\n");
  std::fclose(f);
}

TEST_CASE("ProgressBar off: only the final line") {
  FILE* f = std::tmpfile();
  REQUIRE(f);
  ProgressBar bar(f, ProgressBar::Mode::kOff);
  bar.Show(0.5, "half", true);
  bar.Done("end");
  CHECK(Written(f) == "end\n");
  std::fclose(f);
}

TEST_CASE("HumanBytes") {
  CHECK(HumanBytes(512) == "512 B");
  CHECK(HumanBytes(2048) == "2.0 KB");
  CHECK(HumanBytes(3u << 20) == "3.0 MB");
}

}  // namespace
}  // namespace distkv
