// RunBench: one complete distkv-bench run — optional preload, then the
// measured phase — on a libuv loop of its own, returning when it is over.
// It is a library function so that tests (the cluster tests' --verify run)
// can drive the load generator without a process in between.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/histogram.h"
#include "bench/options.h"

namespace distkv::bench {

// Outcomes of one kind of operation.
struct OpStats {
  HdrHistogram latency;  // every answered request, whatever its status
  uint64_t status_2xx = 0;
  uint64_t status_404 = 0;
  uint64_t status_4xx = 0;  // other 4xx
  uint64_t status_5xx = 0;
  uint64_t status_other = 0;  // 1xx/3xx
  uint64_t errors = 0;        // no answer: connect failed, connection lost, bad HTTP
  uint64_t timeouts = 0;      // no answer in --timeout-ms (or no connection in time)
  uint64_t total() const {
    return status_2xx + status_404 + status_4xx + status_5xx + status_other + errors + timeouts;
  }
  uint64_t failed() const { return status_5xx + errors + timeouts; }
  void Merge(const OpStats& other);
};

struct VerifyResult {
  bool enabled = false;
  uint64_t reads_checked = 0;
  uint64_t reads_unchecked = 0;  // keys this run had not written, or reads that failed
  uint64_t mismatches = 0;
  uint64_t uncertain_writes = 0;  // writes whose fate is unknown (errors, timeouts, 5xx)
  std::vector<std::string> samples;
};

struct BenchResult {
  OpStats get;
  OpStats put;
  OpStats preload;
  double elapsed_s = 0;  // the measured phase, first send to last answer
  double preload_s = 0;
  uint64_t connections_opened = 0;
  uint64_t not_sent = 0;  // --rate: requests still waiting for a free connection at the end
  VerifyResult verify;
  std::string error;  // set when the run could not start

  uint64_t ops() const { return get.total() + put.total(); }
  double ops_per_s() const { return elapsed_s > 0 ? static_cast<double>(ops()) / elapsed_s : 0; }
};

// Once a second during the run.
struct ProgressSample {
  double elapsed_s = 0;  // since the phase began
  bool preloading = false;
  uint64_t done = 0;  // operations answered (or failed) in this phase
  uint64_t preload_total = 0;
  double ops_per_s = 0;  // over the last interval
  uint64_t p99_ns = 0;   // this phase so far
  uint64_t errors = 0;   // failed operations (5xx, errors, timeouts) so far
};
using ProgressFn = std::function<void(const ProgressSample&)>;

// Runs the benchmark described by options (already validated by
// ParseBenchFlags). Returns false, with result->error set, if it could not
// run at all; a run whose requests fail still returns true — the failures
// are in the result.
bool RunBench(const BenchOptions& options, BenchResult* result, const ProgressFn& progress = {});

}  // namespace distkv::bench
