// ProgressPrinter: a live line on a terminal, plain lines elsewhere.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "bench/progress_printer.h"

namespace distkv::bench {
namespace {

// Everything written to a temporary FILE.
std::string Contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  return out;
}

ProgressSample Sample(double elapsed, bool preloading = false) {
  ProgressSample s;
  s.elapsed_s = elapsed;
  s.preloading = preloading;
  s.done = static_cast<uint64_t>(elapsed * 1000);
  s.preload_total = 5000;
  s.ops_per_s = 1000;
  s.p99_ns = 1'500'000;
  s.errors = 2;
  return s;
}

size_t Count(const std::string& s, char c) {
  size_t n = 0;
  for (char x : s) n += x == c;
  return n;
}

TEST_CASE("progress on a terminal: one line rewritten in place, erased at the end") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  ProgressPrinter p(f, /*terminal=*/true);
  for (int i = 1; i <= 3; ++i) p.Show(Sample(i));
  p.Done();
  const std::string out = Contents(f);
  CHECK(Count(out, '\n') == 0);
  CHECK(Count(out, '\r') == 4);  // three lines drawn, one erase
  CHECK(out.find("ops/s") != std::string::npos);
  CHECK(out.find("p99 1.50 ms") != std::string::npos);
  CHECK(out.find("errors 2") != std::string::npos);
  CHECK(out.substr(out.size() - 4) == "\r\033[K");
  std::fclose(f);
}

TEST_CASE("progress elsewhere: plain lines every 5 s and at each phase change, no escapes") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  ProgressPrinter p(f, /*terminal=*/false);
  for (int i = 1; i <= 3; ++i) p.Show(Sample(i, /*preloading=*/true));  // line at 1 s
  for (int i = 1; i <= 12; ++i) p.Show(Sample(i));  // lines at 1 s (new phase), 6 s, 11 s
  p.Done();
  const std::string out = Contents(f);
  CHECK(out.find('\r') == std::string::npos);
  CHECK(out.find('\033') == std::string::npos);
  CHECK(Count(out, '\n') == 4);
  CHECK(out.rfind("preload", 0) == 0);
  CHECK(out.find("  11s") != std::string::npos);
  CHECK(out.find("  12s") == std::string::npos);
  std::fclose(f);
}

}  // namespace
}  // namespace distkv::bench
