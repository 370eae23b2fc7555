// Presentation of a bench run: the live progress line, the summary table
// (with the exact command that produced it) and the JSON file.
#pragma once

#include <cstdio>
#include <string>

#include "bench/options.h"
#include "bench/runner.h"

namespace distkv::bench {

// "1.23 ms", "850 us", "2.50 s".
std::string FormatLatency(uint64_t ns);
// "1,234,567".
std::string FormatCount(uint64_t n);

// One line, no newline: "  12s  45,120 ops/s  p99 1.92 ms  errors 0".
std::string FormatProgress(const ProgressSample& sample);

void PrintSummary(std::FILE* out, const BenchOptions& options, const BenchResult& result);

// The same figures as JSON (latencies in microseconds).
std::string ResultJson(const BenchOptions& options, const BenchResult& result);

}  // namespace distkv::bench
