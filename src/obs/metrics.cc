#include "src/obs/metrics.h"

#include <cstdio>

namespace distkv {

std::string_view RouteName(Route route) {
  switch (route) {
    case Route::kKvGet:
      return "kv_get";
    case Route::kKvPut:
      return "kv_put";
    case Route::kKvDelete:
      return "kv_delete";
    case Route::kHealth:
      return "health";
    case Route::kStats:
      return "stats";
    case Route::kMetrics:
      return "metrics";
    case Route::kCluster:
      return "cluster";
    case Route::kClusterStatus:
      return "cluster_status";
    case Route::kUi:
      return "ui";
    case Route::kCompact:
      return "compact";
    case Route::kDigest:
      return "digest";
    case Route::kReplication:
      return "replication";
    case Route::kScan:
      return "scan";
    case Route::kBatch:
      return "batch";
    case Route::kForwarded:
      return "forwarded";
    case Route::kRedirected:
      return "redirected";
    case Route::kOther:
      return "other";
    case Route::kCount:
      break;
  }
  return "unknown";
}

void FixedBucketHistogram::Observe(uint64_t micros) {
  size_t i = 0;
  while (i < kBoundsUs.size() && micros > kBoundsUs[i]) ++i;
  buckets_[i]++;
  count_++;
  sum_us_ += micros;
}

uint64_t FixedBucketHistogram::QuantileUpperBoundUs(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return i < kBoundsUs.size() ? kBoundsUs[i] : kBoundsUs.back() * 10;
  }
  return kBoundsUs.back() * 10;
}

void RequestMetrics::Record(Route route, int status, uint64_t micros) {
  if (status < 0 || status >= kStatuses) status = 0;
  counts_[static_cast<size_t>(route)][static_cast<size_t>(status)]++;
  total_++;
  latency_.Observe(micros);
  switch (route) {
    case Route::kKvGet:
    case Route::kKvPut:
    case Route::kKvDelete:
    case Route::kForwarded:
    case Route::kRedirected:
      kv_latency_.Observe(micros);
      break;
    default:
      break;
  }
}

void FixedBucketHistogram::WriteJson(JsonWriter* w) const {
  w->BeginObject();
  w->Key("bounds_us");
  w->BeginArray();
  for (uint64_t bound : kBoundsUs) w->Value(bound);
  w->EndArray();
  w->Key("counts");
  w->BeginArray();
  for (uint64_t n : buckets_) w->Value(n);
  w->EndArray();
  w->EndObject();
}

void FixedBucketHistogram::WritePrometheus(PromWriter* prom, std::string_view name,
                                           std::string_view help) const {
  prom->Family(name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBoundsUs.size(); ++i) {
    cumulative += buckets_[i];
    char le[32];
    std::snprintf(le, sizeof le, "%g", static_cast<double>(kBoundsUs[i]) / 1e6);
    prom->Sample(bucket, {{"le", le}}, cumulative);
  }
  prom->Sample(bucket, {{"le", "+Inf"}}, count_);
  prom->Sample(std::string(name) + "_sum", {}, static_cast<double>(sum_us_) / 1e6);
  prom->Sample(std::string(name) + "_count", {}, count_);
}

uint64_t RequestMetrics::count(Route route, int status) const {
  if (status < 0 || status >= kStatuses) return 0;
  return counts_[static_cast<size_t>(route)][static_cast<size_t>(status)];
}

void RequestMetrics::WriteJson(JsonWriter* w) const {
  w->BeginObject();
  for (size_t r = 0; r < counts_.size(); ++r) {
    bool any = false;
    for (int s = 0; s < kStatuses; ++s) {
      if (!counts_[r][s]) continue;
      if (!any) {
        w->Key(RouteName(static_cast<Route>(r)));
        w->BeginObject();
        any = true;
      }
      w->Field(std::to_string(s), counts_[r][s]);
    }
    if (any) w->EndObject();
  }
  w->EndObject();
}

void RequestMetrics::WritePrometheus(PromWriter* prom) const {
  prom->Family("distkv_requests_total", "counter", "HTTP requests answered, by route and status.");
  for (size_t r = 0; r < counts_.size(); ++r) {
    for (int s = 0; s < kStatuses; ++s) {
      if (!counts_[r][s]) continue;
      const std::string status = std::to_string(s);
      prom->Sample("distkv_requests_total",
                   {{"route", RouteName(static_cast<Route>(r))}, {"status", status}},
                   counts_[r][s]);
    }
  }
  latency_.WritePrometheus(prom, "distkv_request_duration_seconds",
                           "Time from request parsed to response queued.");
}

}  // namespace distkv
