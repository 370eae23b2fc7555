#include "bench/report.h"

#include <cinttypes>
#include <cmath>

#include "src/obs/json_writer.h"

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

// One decimal is all a benchmark figure carries.
double Tenths(double v) { return std::round(v * 10) / 10; }

void WriteOpJson(JsonWriter* w, const char* name, const OpStats& s, double seconds) {
  w->Key(name);
  w->BeginObject();
  w->Field("count", s.total());
  w->Field("ops_per_s", Tenths(PerSecond(s.total(), seconds)));
  w->Key("latency_us");
  w->BeginObject();
  w->Field("p50", Tenths(static_cast<double>(s.latency.Percentile(50)) / 1e3));
  w->Field("p90", Tenths(static_cast<double>(s.latency.Percentile(90)) / 1e3));
  w->Field("p99", Tenths(static_cast<double>(s.latency.Percentile(99)) / 1e3));
  w->Field("p99_9", Tenths(static_cast<double>(s.latency.Percentile(99.9)) / 1e3));
  w->Field("max", Tenths(static_cast<double>(s.latency.max()) / 1e3));
  w->Field("mean", Tenths(s.latency.mean() / 1e3));
  w->EndObject();
  w->Key("status");
  w->BeginObject();
  w->Field("2xx", s.status_2xx);
  w->Field("404", s.status_404);
  w->Field("4xx", s.status_4xx);
  w->Field("5xx", s.status_5xx);
  w->Field("other", s.status_other);
  w->Field("errors", s.errors);
  w->Field("timeouts", s.timeouts);
  w->EndObject();
  w->EndObject();
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
  std::string j;
  JsonWriter w(&j);
  w.BeginObject();
  w.Field("command", o.command_line);
  w.Key("targets");
  w.BeginArray();
  for (const std::string& target : o.targets) w.Value(target);
  w.EndArray();
  w.Field("connections", o.connections);
  w.Field("pipeline", o.pipeline);
  w.Field("rate", Tenths(o.rate));
  w.Field("get_weight", o.get_weight);
  w.Field("put_weight", o.put_weight);
  w.Field("keys", o.keys);
  w.Field("value_bytes", o.value_bytes);
  w.Field("distribution", o.distribution == Distribution::kZipf ? "zipf" : "uniform");
  w.Field("api", o.api == Api::kKv ? "kv" : "seed");
  w.Field("elapsed_s", std::round(r.elapsed_s * 1000) / 1000);
  w.Field("requests", r.ops());
  w.Field("ops_per_s", Tenths(r.ops_per_s()));
  w.Field("preload_s", std::round(r.preload_s * 1000) / 1000);
  w.Field("connections_opened", r.connections_opened);
  w.Field("not_sent", r.not_sent);
  OpStats all;
  all.Merge(r.get);
  all.Merge(r.put);
  WriteOpJson(&w, "get", r.get, r.elapsed_s);
  WriteOpJson(&w, "put", r.put, r.elapsed_s);
  WriteOpJson(&w, "all", all, r.elapsed_s);
  WriteOpJson(&w, "preload", r.preload, r.preload_s);
  w.Key("verify");
  w.BeginObject();
  w.Field("enabled", r.verify.enabled);
  w.Field("reads_checked", r.verify.reads_checked);
  w.Field("reads_unchecked", r.verify.reads_unchecked);
  w.Field("mismatches", r.verify.mismatches);
  w.Field("uncertain_writes", r.verify.uncertain_writes);
  w.Key("samples");
  w.BeginArray();
  for (const std::string& sample : r.verify.samples) w.Value(sample);
  w.EndArray();
  w.EndObject();
  w.EndObject();
  j += "\n";
  return j;
}

}  // namespace distkv::bench
