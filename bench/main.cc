// distkv-bench: the load generator (see bench/options.cc for its flags).
// Exit codes: 0 ok; 1 verification mismatches, no successful request, or the
// run could not start; 2 bad flags.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/options.h"
#include "bench/progress_printer.h"
#include "bench/report.h"
#include "bench/runner.h"

using namespace distkv::bench;

int main(int argc, char** argv) {
  BenchOptions options;
  std::string error;
  switch (ParseBenchFlags(argc, argv, &options, &error)) {
    case ParseResult::kHelp:
      std::fputs(BenchUsage(), stdout);
      return 0;
    case ParseResult::kError:
      std::fprintf(stderr, "distkv-bench: %s\n\n%s", error.c_str(), BenchUsage());
      return 2;
    case ParseResult::kOk:
      break;
  }
  // A token in the environment stays out of the process list.
  if (const char* token = std::getenv("DISTKV_TOKEN"); options.token.empty() && token != nullptr) {
    options.token = token;
  }

  ProgressPrinter printer(stderr, isatty(STDERR_FILENO));
  ProgressFn progress;
  if (options.progress) progress = [&printer](const ProgressSample& s) { printer.Show(s); };
  BenchResult result;
  bool ran = RunBench(options, &result, progress);
  printer.Done();
  if (!ran) {
    std::fprintf(stderr, "distkv-bench: %s\n", result.error.c_str());
    return 1;
  }
  PrintSummary(stdout, options, result);
  std::fflush(stdout);

  if (!options.json_path.empty()) {
    std::FILE* f = std::fopen(options.json_path.c_str(), "w");
    std::string json = ResultJson(options, result);
    if (f == nullptr || std::fwrite(json.data(), 1, json.size(), f) != json.size() ||
        std::fclose(f) != 0) {
      std::fprintf(stderr, "distkv-bench: cannot write %s\n", options.json_path.c_str());
      return 1;
    }
  }
  if (result.verify.mismatches > 0) {
    std::fprintf(stderr, "distkv-bench: %llu verification mismatches\n",
                 static_cast<unsigned long long>(result.verify.mismatches));
    return 1;
  }
  uint64_t answered = result.get.status_2xx + result.get.status_404 + result.put.status_2xx;
  if (result.ops() > 0 && answered == 0) {
    std::fprintf(stderr, "distkv-bench: no request succeeded\n");
    return 1;
  }
  return 0;
}
