#include "src/obs/metrics.h"

#include "net/http_message.h"

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

void LatencyHistogram::Observe(uint64_t micros) {
  size_t i = 0;
  while (i < kBoundsUs.size() && micros > kBoundsUs[i]) ++i;
  buckets_[i]++;
  count_++;
  sum_us_ += micros;
}

uint64_t LatencyHistogram::QuantileUpperBoundUs(double q) const {
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

void LatencyHistogram::AppendJson(std::string* out) const {
  out->append("{\"bounds_us\":[");
  for (size_t i = 0; i < kBoundsUs.size(); ++i) {
    if (i) out->push_back(',');
    out->append(std::to_string(kBoundsUs[i]));
  }
  out->append("],\"counts\":[");
  for (size_t i = 0; i < buckets_.size(); ++i) {
    if (i) out->push_back(',');
    out->append(std::to_string(buckets_[i]));
  }
  out->append("]}");
}

uint64_t RequestMetrics::count(Route route, int status) const {
  if (status < 0 || status >= kStatuses) return 0;
  return counts_[static_cast<size_t>(route)][static_cast<size_t>(status)];
}

void RequestMetrics::AppendJson(std::string* out) const {
  out->push_back('{');
  bool first_route = true;
  for (size_t r = 0; r < counts_.size(); ++r) {
    bool any = false;
    for (int s = 0; s < kStatuses; ++s) {
      if (!counts_[r][s]) continue;
      if (!any) {
        if (!first_route) out->push_back(',');
        first_route = false;
        net::AppendJsonString(out, RouteName(static_cast<Route>(r)));
        out->append(":{");
        any = true;
      } else {
        out->push_back(',');
      }
      out->append("\"" + std::to_string(s) + "\":" + std::to_string(counts_[r][s]));
    }
    if (any) out->push_back('}');
  }
  out->push_back('}');
}

void RequestMetrics::AppendPrometheus(std::string* out) const {
  out->append(
      "# HELP distkv_requests_total HTTP requests answered, by route and status.\n"
      "# TYPE distkv_requests_total counter\n");
  for (size_t r = 0; r < counts_.size(); ++r) {
    for (int s = 0; s < kStatuses; ++s) {
      if (!counts_[r][s]) continue;
      out->append("distkv_requests_total{route=\"");
      out->append(RouteName(static_cast<Route>(r)));
      out->append("\",status=\"" + std::to_string(s) + "\"} " + std::to_string(counts_[r][s]) +
                  "\n");
    }
  }
  out->append(
      "# HELP distkv_request_duration_seconds Time from request parsed to response queued.\n"
      "# TYPE distkv_request_duration_seconds histogram\n");
  uint64_t cumulative = 0;
  const auto& b = latency_.buckets();
  for (size_t i = 0; i < LatencyHistogram::kBoundsUs.size(); ++i) {
    cumulative += b[i];
    char le[32];
    snprintf(le, sizeof le, "%g", static_cast<double>(LatencyHistogram::kBoundsUs[i]) / 1e6);
    out->append("distkv_request_duration_seconds_bucket{le=\"");
    out->append(le);
    out->append("\"} " + std::to_string(cumulative) + "\n");
  }
  out->append("distkv_request_duration_seconds_bucket{le=\"+Inf\"} " +
              std::to_string(latency_.count()) + "\n");
  char sum[48];
  snprintf(sum, sizeof sum, "%.6f", static_cast<double>(latency_.sum_us()) / 1e6);
  out->append(std::string("distkv_request_duration_seconds_sum ") + sum + "\n");
  out->append("distkv_request_duration_seconds_count " + std::to_string(latency_.count()) + "\n");
}

void AppendJsonField(std::string* out, std::string_view name, uint64_t value, bool comma) {
  net::AppendJsonString(out, name);
  out->push_back(':');
  out->append(std::to_string(value));
  if (comma) out->push_back(',');
}

void AppendJsonField(std::string* out, std::string_view name, std::string_view value, bool comma) {
  net::AppendJsonString(out, name);
  out->push_back(':');
  net::AppendJsonString(out, value);
  if (comma) out->push_back(',');
}

void AppendPromMetric(std::string* out, std::string_view name, std::string_view type,
                      std::string_view help, uint64_t value) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
  out->append(name).append(" ").append(std::to_string(value)).append("\n");
}

}  // namespace distkv
