#include "bench/report.h"

#include <cinttypes>

#include "net/http_message.h"

namespace distkv::bench {

namespace {

std::string Format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

double PerSecond(uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

const double kPercentiles[] = {50, 90, 99, 99.9};

void PrintLatencyRow(std::FILE* out, const char* name, const OpStats& s, double seconds) {
  std::fprintf(out, "%-8s %12s %11s", name, FormatCount(s.total()).c_str(),
               FormatCount(static_cast<uint64_t>(PerSecond(s.total(), seconds))).c_str());
  for (double p : kPercentiles)
    std::fprintf(out, " %10s", FormatLatency(s.latency.Percentile(p)).c_str());
  std::fprintf(out, " %10s %10s\n", FormatLatency(s.latency.max()).c_str(),
               FormatLatency(static_cast<uint64_t>(s.latency.mean())).c_str());
}

void PrintStatusRow(std::FILE* out, const char* name, const OpStats& s) {
  std::fprintf(out, "%-8s %12s %10s %8s %8s %8s %8s %9s\n", name, FormatCount(s.status_2xx).c_str(),
               FormatCount(s.status_404).c_str(), FormatCount(s.status_4xx).c_str(),
               FormatCount(s.status_5xx).c_str(), FormatCount(s.status_other).c_str(),
               FormatCount(s.errors).c_str(), FormatCount(s.timeouts).c_str());
}

void AppendOpJson(std::string* j, const char* name, const OpStats& s, double seconds) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "\"%s\": {\"count\": %" PRIu64
                ", \"ops_per_s\": %.1f, \"latency_us\": {\"p50\": %.1f, "
                "\"p90\": %.1f, \"p99\": %.1f, \"p99_9\": %.1f, \"max\": %.1f, \"mean\": %.1f}, "
                "\"status\": {\"2xx\": %" PRIu64 ", \"404\": %" PRIu64 ", \"4xx\": %" PRIu64
                ", \"5xx\": %" PRIu64 ", \"other\": %" PRIu64 ", \"errors\": %" PRIu64
                ", \"timeouts\": %" PRIu64 "}}",
                name, s.total(), PerSecond(s.total(), seconds), s.latency.Percentile(50) / 1e3,
                s.latency.Percentile(90) / 1e3, s.latency.Percentile(99) / 1e3,
                s.latency.Percentile(99.9) / 1e3, static_cast<double>(s.latency.max()) / 1e3,
                s.latency.mean() / 1e3, s.status_2xx, s.status_404, s.status_4xx, s.status_5xx,
                s.status_other, s.errors, s.timeouts);
  j->append(buf);
}

}  // namespace

std::string FormatLatency(uint64_t ns) {
  if (ns < 1'000) return std::to_string(ns) + " ns";
  if (ns < 1'000'000) return Format("%.0f us", static_cast<double>(ns) / 1e3);
  if (ns < 1'000'000'000) return Format("%.2f ms", static_cast<double>(ns) / 1e6);
  return Format("%.2f s", static_cast<double>(ns) / 1e9);
}

std::string FormatCount(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string FormatProgress(const ProgressSample& s) {
  char buf[256];
  if (s.preloading) {
    std::snprintf(buf, sizeof(buf), "preload %4.0fs  %s/%s keys  %s writes/s  p99 %s  errors %s",
                  s.elapsed_s, FormatCount(s.done).c_str(), FormatCount(s.preload_total).c_str(),
                  FormatCount(static_cast<uint64_t>(s.ops_per_s)).c_str(),
                  FormatLatency(s.p99_ns).c_str(), FormatCount(s.errors).c_str());
  } else {
    std::snprintf(buf, sizeof(buf), "%4.0fs  %s ops/s  p99 %s  done %s  errors %s", s.elapsed_s,
                  FormatCount(static_cast<uint64_t>(s.ops_per_s)).c_str(),
                  FormatLatency(s.p99_ns).c_str(), FormatCount(s.done).c_str(),
                  FormatCount(s.errors).c_str());
  }
  return buf;
}

void PrintSummary(std::FILE* out, const BenchOptions& o, const BenchResult& r) {
  std::string targets;
  for (const std::string& t : o.targets) targets += (targets.empty() ? "" : ",") + t;
  std::fprintf(out, "command: %s\n", o.command_line.c_str());
  std::fprintf(out, "targets: %s\n", targets.c_str());
  std::fprintf(
      out,
      "load: %d connections, pipeline %d, %s, GET:PUT %u:%u, %s keys (%s), %zu-byte values, api "
      "%s\n",
      o.connections, o.pipeline,
      o.rate > 0 ? ("open loop at " + FormatCount(static_cast<uint64_t>(o.rate)) + " req/s").c_str()
                 : "closed loop",
      o.get_weight, o.put_weight, FormatCount(o.keys).c_str(),
      o.distribution == Distribution::kZipf ? Format("zipf %.2f", o.zipf_theta).c_str() : "uniform",
      o.value_bytes, o.api == Api::kKv ? "kv" : "seed");
  if (o.preload) {
    std::fprintf(
        out, "preload: %s writes in %.1f s (%s/s), %s failed\n",
        FormatCount(r.preload.total()).c_str(), r.preload_s,
        FormatCount(static_cast<uint64_t>(PerSecond(r.preload.total(), r.preload_s))).c_str(),
        FormatCount(r.preload.failed() + r.preload.status_4xx).c_str());
  }
  std::fprintf(out, "run: %s requests in %.2f s: %s req/s\n\n", FormatCount(r.ops()).c_str(),
               r.elapsed_s, FormatCount(static_cast<uint64_t>(r.ops_per_s())).c_str());

  std::fprintf(out, "%-8s %12s %11s %10s %10s %10s %10s %10s %10s\n", "op", "count", "ops/s", "p50",
               "p90", "p99", "p99.9", "max", "mean");
  OpStats all;
  all.Merge(r.get);
  all.Merge(r.put);
  if (r.get.total() > 0) PrintLatencyRow(out, "GET", r.get, r.elapsed_s);
  if (r.put.total() > 0) PrintLatencyRow(out, "PUT", r.put, r.elapsed_s);
  PrintLatencyRow(out, "all", all, r.elapsed_s);
  std::fprintf(out, "\n%-8s %12s %10s %8s %8s %8s %8s %9s\n", "status", "2xx", "404", "4xx", "5xx",
               "other", "errors", "timeouts");
  if (r.get.total() > 0) PrintStatusRow(out, "GET", r.get);
  if (r.put.total() > 0) PrintStatusRow(out, "PUT", r.put);
  if (o.preload) PrintStatusRow(out, "preload", r.preload);
  std::fprintf(out, "\nconnections opened: %s", FormatCount(r.connections_opened).c_str());
  if (r.not_sent > 0)
    std::fprintf(out, "; not sent (rate above capacity): %s", FormatCount(r.not_sent).c_str());
  std::fprintf(out, "\n");
  if (r.verify.enabled) {
    std::fprintf(out,
                 "verify: %s reads checked, %s mismatches (%s reads of unwritten keys or failed, "
                 "%s writes of "
                 "unknown outcome)\n",
                 FormatCount(r.verify.reads_checked).c_str(),
                 FormatCount(r.verify.mismatches).c_str(),
                 FormatCount(r.verify.reads_unchecked).c_str(),
                 FormatCount(r.verify.uncertain_writes).c_str());
    for (const std::string& s : r.verify.samples) std::fprintf(out, "  mismatch: %s\n", s.c_str());
  }
}

std::string ResultJson(const BenchOptions& o, const BenchResult& r) {
  std::string j = "{\"command\": ";
  net::AppendJsonString(&j, o.command_line);
  j += ", \"targets\": [";
  for (size_t i = 0; i < o.targets.size(); ++i) {
    if (i > 0) j += ", ";
    net::AppendJsonString(&j, o.targets[i]);
  }
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "], \"connections\": %d, \"pipeline\": %d, \"rate\": %.1f, \"get_weight\": %u, "
                "\"put_weight\": %u, "
                "\"keys\": %" PRIu64
                ", \"value_bytes\": %zu, \"distribution\": \"%s\", \"api\": \"%s\", "
                "\"elapsed_s\": %.3f, \"requests\": %" PRIu64
                ", \"ops_per_s\": %.1f, \"preload_s\": %.3f, "
                "\"connections_opened\": %" PRIu64 ", \"not_sent\": %" PRIu64 ", ",
                o.connections, o.pipeline, o.rate, o.get_weight, o.put_weight, o.keys,
                o.value_bytes, o.distribution == Distribution::kZipf ? "zipf" : "uniform",
                o.api == Api::kKv ? "kv" : "seed", r.elapsed_s, r.ops(), r.ops_per_s(), r.preload_s,
                r.connections_opened, r.not_sent);
  j += buf;
  OpStats all;
  all.Merge(r.get);
  all.Merge(r.put);
  AppendOpJson(&j, "get", r.get, r.elapsed_s);
  j += ", ";
  AppendOpJson(&j, "put", r.put, r.elapsed_s);
  j += ", ";
  AppendOpJson(&j, "all", all, r.elapsed_s);
  j += ", ";
  AppendOpJson(&j, "preload", r.preload, r.preload_s);
  std::snprintf(buf, sizeof(buf),
                ", \"verify\": {\"enabled\": %s, \"reads_checked\": %" PRIu64
                ", \"reads_unchecked\": %" PRIu64 ", \"mismatches\": %" PRIu64
                ", \"uncertain_writes\": %" PRIu64 ", \"samples\": [",
                r.verify.enabled ? "true" : "false", r.verify.reads_checked,
                r.verify.reads_unchecked, r.verify.mismatches, r.verify.uncertain_writes);
  j += buf;
  for (size_t i = 0; i < r.verify.samples.size(); ++i) {
    if (i > 0) j += ", ";
    net::AppendJsonString(&j, r.verify.samples[i]);
  }
  j += "]}}\n";
  return j;
}

}  // namespace distkv::bench
