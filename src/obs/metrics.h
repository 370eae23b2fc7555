// Metrics: the node's counters, shown by /stats (JSON) and /metrics
// (Prometheus text). Plain numbers, updated on the loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/obs/json_writer.h"
#include "src/obs/prometheus.h"

namespace distkv {

// What a request was, for counting. Keep RouteName in step.
enum class Route : uint8_t {
  kKvGet,
  kKvPut,
  kKvDelete,
  kHealth,
  kStats,
  kMetrics,
  kCluster,
  kClusterStatus,
  kUi,
  kCompact,
  kDigest,
  kReplication,
  kScan,
  kBatch,
  kForwarded,
  kRedirected,
  kOther,
  kCount
};
std::string_view RouteName(Route route);

// Latency in fixed buckets (upper bounds in microseconds), enough for a
// Prometheus histogram and for rough percentiles in /stats. (The load
// generator's finer histogram is bench/histogram.h's HdrHistogram.)
class FixedBucketHistogram {
 public:
  static constexpr std::array<uint64_t, 16> kBoundsUs = {
      50,    100,   250,    500,    1000,   2500,    5000,    10000,
      25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000};
  void Observe(uint64_t micros);
  uint64_t count() const { return count_; }
  uint64_t sum_us() const { return sum_us_; }
  // Upper bound of the bucket holding the q-quantile (0 < q <= 1), in µs.
  uint64_t QuantileUpperBoundUs(double q) const;
  const std::array<uint64_t, kBoundsUs.size() + 1>& buckets() const { return buckets_; }
  // Writes {"bounds_us":[...],"counts":[...]} (counts has one more entry:
  // above every bound), so a reader can diff two snapshots for the
  // percentiles of the interval between them.
  void WriteJson(JsonWriter* w) const;
  // Writes the histogram as a Prometheus family in seconds: name_bucket
  // (cumulative, le="..."), name_sum and name_count.
  void WritePrometheus(PromWriter* prom, std::string_view name, std::string_view help) const;

 private:
  std::array<uint64_t, kBoundsUs.size() + 1> buckets_{};  // last: above every bound
  uint64_t count_ = 0;
  uint64_t sum_us_ = 0;
};

class RequestMetrics {
 public:
  void Record(Route route, int status, uint64_t micros);
  uint64_t total() const { return total_; }
  uint64_t count(Route route, int status) const;
  const FixedBucketHistogram& latency() const { return latency_; }
  // Key-value requests only (local or forwarded): what a user's latency is,
  // without the status pages and replication streams.
  const FixedBucketHistogram& kv_latency() const { return kv_latency_; }

  // Writes {"route":{"200":n,...},...}.
  void WriteJson(JsonWriter* w) const;
  // Writes distkv_requests_total and distkv_request_duration_seconds.
  void WritePrometheus(PromWriter* prom) const;

 private:
  static constexpr int kStatuses = 600;
  std::array<std::array<uint64_t, kStatuses>, static_cast<size_t>(Route::kCount)> counts_{};
  uint64_t total_ = 0;
  FixedBucketHistogram latency_;
  FixedBucketHistogram kv_latency_;
};

}  // namespace distkv
