// The node's status pages: /stats (JSON), /metrics (Prometheus text),
// /internal/digest and /cluster. They only read the node's parts and
// counters; the request path is in node.cc.
#include <xxhash.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "src/node/node.h"

namespace distkv {

// `{"name":...,"idx":N,"slots":[[a,b],...]` — the part of a shard's object
// that /cluster and /cluster/status share; the caller goes on with its fields.
void AppendShardHead(std::string* b, const ShardConfig& s) {
  *b += "{";
  AppendJsonField(b, "name", s.name);
  AppendJsonField(b, "idx", static_cast<uint64_t>(s.idx));
  *b += "\"slots\":[";
  for (size_t k = 0; k < s.slots.size(); ++k) {
    *b += (k ? ",[" : "[") + std::to_string(s.slots[k].first) + "," +
          std::to_string(s.slots[k].last) + "]";
  }
  *b += "]";
}

net::HttpResponse Node::StatsResponse() const {
  const storage::StoreStats st = store_->Stats();
  const ShardConfig& shard = map_.shards()[self_];
  const auto& pc = pipeline_->counters();
  const auto& sc = server_->counters();
  const auto& fc = forwarder_->counters();
  std::string b = "{";
  AppendJsonField(&b, "role", role_name());
  AppendJsonField(&b, "shard", shard.name);
  AppendJsonField(&b, "address", advertise_);
  AppendJsonField(&b, "epoch", cluster_map_.epoch);
  AppendJsonField(&b, "uptime_s", (uv_hrtime() - started_ns_) / 1'000'000'000ull);
  AppendJsonField(&b, "time_ms", events_.now_ms());
  AppendJsonField(&b, "fsync", storage::FsyncModeName(options_.config.fsync));
  AppendJsonField(&b, "keys", st.keys);
  AppendJsonField(&b, "keys_with_ttl", st.keys_with_ttl);
  AppendJsonField(&b, "expired_keys", expired_keys_);
  AppendJsonField(&b, "live_bytes", st.live_bytes);
  AppendJsonField(&b, "dead_bytes", st.dead_bytes);
  AppendJsonField(&b, "segments", st.segments);
  AppendJsonField(&b, "last_lsn", st.last_lsn);
  AppendJsonField(&b, "durable_lsn", st.durable_lsn);
  AppendJsonField(&b, "high_water_lsn", st.high_water_lsn);
  {
    char id[17];
    std::snprintf(id, sizeof(id), "%016" PRIx64, st.history_id);
    AppendJsonField(&b, "history_id", id);
  }
  // After a failed sync the store takes no writes until a restart; say why.
  const storage::Status writable = store_->writable();
  AppendJsonField(&b, "read_only", writable.ok() ? 0 : 1);
  if (!writable.ok()) AppendJsonField(&b, "read_only_reason", writable.message());
  AppendJsonField(&b, "index_bytes", st.index_bytes);
  b += "\"compaction\":";
  compactor_->AppendJson(&b);
  b += ",\"commit\":{";
  AppendJsonField(&b, "batches", pc.batches);
  AppendJsonField(&b, "batch_records", pc.batch_records);
  AppendJsonField(&b, "max_batch_records", pc.max_batch_records);
  AppendJsonField(&b, "failures", pc.batch_failures);
  AppendJsonField(&b, "batch_us", pc.batch_us);
  AppendJsonField(&b, "lingered", pc.lingered);
  AppendJsonField(&b, "linger_timeouts", pc.linger_timeouts);
  AppendJsonField(&b, "linger_us", pc.linger_us);
  AppendJsonField(&b, "reads_held", pc.reads_held);
  AppendJsonField(&b, "syncs", st.syncs);
  AppendJsonField(&b, "waiting", pipeline_->waiting(), false);
  b += "},\"connections\":{";
  AppendJsonField(&b, "current", sc.connections_current);
  AppendJsonField(&b, "accepted", sc.connections_accepted);
  AppendJsonField(&b, "rejected", sc.connections_rejected);
  AppendJsonField(&b, "timeouts", sc.timeouts);
  AppendJsonField(&b, "parse_errors", sc.parse_errors);
  // Write bodies held until durable (or answered), under [server] max_staged_bytes.
  AppendJsonField(&b, "staged_bytes", sc.staged_bytes);
  AppendJsonField(&b, "staged_bytes_peak", sc.staged_bytes_peak);
  AppendJsonField(&b, "staging_waits", sc.staging_waits, false);
  b += "},\"forwarding\":{";
  AppendJsonField(&b, "forwarded", fc.forwarded);
  AppendJsonField(&b, "to_replica", fc.to_replica);
  AppendJsonField(&b, "failed", fc.failed);
  AppendJsonField(&b, "connections_opened", client_->counters().connections_opened, false);
  b += "},\"failover\":{";
  AppendJsonField(&b, "maps_adopted", failover_.maps_adopted);
  AppendJsonField(&b, "promotions", failover_.promotions);
  AppendJsonField(&b, "demotions", failover_.demotions);
  AppendJsonField(&b, "writes_fenced", failover_.writes_fenced);
  AppendJsonField(&b, "tails_cut", failover_.tails_cut);
  AppendJsonField(&b, "lost_bytes", failover_.lost_bytes, false);
  b += "},\"replication\":";
  if (primary_) primary_->AppendJson(&b);
  if (replica_) replica_->AppendJson(&b);
  b += ",\"requests\":{";
  AppendJsonField(&b, "total", metrics_.total());
  AppendJsonField(&b, "p50_us_le", metrics_.latency().QuantileUpperBoundUs(0.5));
  AppendJsonField(&b, "p99_us_le", metrics_.latency().QuantileUpperBoundUs(0.99));
  b += "\"kv_latency\":";
  metrics_.kv_latency().AppendJson(&b);
  b += ",\"by_route\":";
  metrics_.AppendJson(&b);
  b += "},\"progress\":";
  progress_.AppendJson(&b);
  b += ",\"events\":";
  events_.AppendJson(&b);
  b += "}\n";
  net::HttpResponse r;
  r.SetHeader("Content-Type", "application/json");
  r.body = std::move(b);
  return r;
}

net::HttpResponse Node::MetricsResponse() const {
  const storage::StoreStats st = store_->Stats();
  const auto& pc = pipeline_->counters();
  std::string b;
  AppendPromMetric(&b, "distkv_keys", "gauge", "Live keys in this node's store.", st.keys);
  AppendPromMetric(&b, "distkv_read_only", "gauge",
                   "1 after a failed sync: the store takes no writes until restarted.",
                   st.read_only ? 1 : 0);
  AppendPromMetric(&b, "distkv_live_bytes", "gauge", "Bytes of live records.", st.live_bytes);
  AppendPromMetric(&b, "distkv_dead_bytes", "gauge", "Bytes of overwritten or deleted records.",
                   st.dead_bytes);
  AppendPromMetric(&b, "distkv_segments", "gauge", "Segment files.", st.segments);
  AppendPromMetric(&b, "distkv_last_lsn", "gauge", "Newest LSN staged.", st.last_lsn);
  AppendPromMetric(&b, "distkv_durable_lsn", "gauge", "Newest LSN made durable.", st.durable_lsn);
  AppendPromMetric(&b, "distkv_fsync_batches_total", "counter", "Group-commit batches completed.",
                   pc.batches);
  AppendPromMetric(&b, "distkv_fsync_batch_records_total", "counter",
                   "Records in completed batches (divide by batches for the mean batch size).",
                   pc.batch_records);
  AppendPromMetric(&b, "distkv_fsync_batch_failures_total", "counter", "Batches that failed.",
                   pc.batch_failures);
  AppendPromMetric(&b, "distkv_fsync_batch_microseconds_total", "counter",
                   "Time batches took from leaving the loop to completing (write + sync).",
                   pc.batch_us);
  AppendPromMetric(&b, "distkv_fsync_lingered_total", "counter",
                   "Batches held back to gather the writers a slow batch answered.", pc.lingered);
  AppendPromMetric(&b, "distkv_fsync_linger_microseconds_total", "counter",
                   "Time batches were held back to gather writers.", pc.linger_us);
  AppendPromMetric(&b, "distkv_reads_held_total", "counter",
                   "Reads that waited for the batch holding what they read to be durable.",
                   pc.reads_held);
  AppendPromMetric(&b, "distkv_fsyncs_total", "counter", "fdatasync calls.", st.syncs);
  AppendPromMetric(&b, "distkv_connections", "gauge", "Open client connections.",
                   server_->counters().connections_current);
  AppendPromMetric(&b, "distkv_staged_bytes", "gauge",
                   "Request bodies held until their write is durable (or answered).",
                   server_->counters().staged_bytes);
  AppendPromMetric(&b, "distkv_staging_waits_total", "counter",
                   "Requests whose connection stopped being read for want of staging room.",
                   server_->counters().staging_waits);
  AppendPromMetric(&b, "distkv_forwarded_total", "counter", "Requests forwarded to other shards.",
                   forwarder_->counters().forwarded);
  AppendPromMetric(&b, "distkv_forward_failures_total", "counter",
                   "Forwarded requests whose owner could not be reached.",
                   forwarder_->counters().failed);
  compactor_->AppendPrometheus(&b);
  if (primary_) primary_->AppendPrometheus(&b);
  if (replica_) replica_->AppendPrometheus(&b);
  metrics_.AppendPrometheus(&b);
  net::HttpResponse r;
  r.SetHeader("Content-Type", "text/plain; version=0.0.4");
  r.body = std::move(b);
  return r;
}

net::HttpResponse Node::DigestResponse() {
  // Order-independent: the sum of one hash per (key, value) pair. Walks the
  // whole store on the loop; an operator's and the tests' tool, not a hot path.
  uint64_t sum = 0, count = 0;
  std::string buf;
  storage::Status s = store_->ForEach([&](std::string_view key, std::string_view value, uint64_t) {
    buf.clear();
    const uint32_t klen = static_cast<uint32_t>(key.size());
    buf.append(reinterpret_cast<const char*>(&klen), sizeof klen);
    buf.append(key);
    buf.append(value);
    sum += XXH3_64bits(buf.data(), buf.size());
    count++;
  });
  if (!s.ok()) return StorageError(s);
  char hex[17];
  snprintf(hex, sizeof hex, "%016" PRIx64, sum);
  std::string b = "{";
  AppendJsonField(&b, "keys", count);
  AppendJsonField(&b, "last_lsn", store_->last_lsn());
  AppendJsonField(&b, "digest", std::string_view(hex), false);
  b += "}\n";
  net::HttpResponse r;
  r.SetHeader("Content-Type", "application/json");
  r.body = std::move(b);
  return r;
}

void Node::HandleCluster(net::Responder responder, uint64_t start_ns) {
  // Probes every other node's /health (pooled, short timeout) so the map
  // says who is reachable now, then answers once all probes are back.
  struct Probe {
    std::vector<std::string> peers;
    std::vector<int> reachable;  // -1 pending, 0 no, 1 yes
    size_t pending = 0;
  };
  auto probe = std::make_shared<Probe>();
  for (const auto& s : map_.shards()) {
    probe->peers.push_back(s.address);
    for (const auto& r : s.replicas) probe->peers.push_back(r);
  }
  probe->reachable.assign(probe->peers.size(), -1);

  auto render = [this, probe, responder, start_ns]() mutable {
    size_t i = 0;
    const ShardConfig& self = map_.shards()[self_];
    std::string b = "{";
    AppendJsonField(&b, "slots", kSlotCount);
    AppendJsonField(&b, "epoch", cluster_map_.epoch);
    if (coordinator_) {
      b += "\"coordinator\":";
      coordinator_->AppendJson(&b);
      b += ",";
    }
    AppendJsonField(&b, "routing",
                    options_.config.routing == RoutingMode::kProxy ? "proxy" : "redirect");
    b += "\"self\":{";
    AppendJsonField(&b, "shard", self.name);
    AppendJsonField(&b, "role", role_name());
    AppendJsonField(&b, "address", advertise_, false);
    b += "},\"shards\":[";
    for (size_t n = 0; n < map_.shards().size(); ++n) {
      const ShardConfig& s = map_.shards()[n];
      if (n) b += ",";
      AppendShardHead(&b, s);
      b += ",\"primary\":{";
      AppendJsonField(&b, "address", s.address);
      b += std::string("\"reachable\":") + (probe->reachable[i++] == 1 ? "true" : "false") + "}";
      b += ",\"replicas\":[";
      for (size_t k = 0; k < s.replicas.size(); ++k) {
        b += k ? ",{" : "{";
        AppendJsonField(&b, "address", s.replicas[k]);
        b += std::string("\"reachable\":") + (probe->reachable[i++] == 1 ? "true" : "false") + "}";
      }
      b += "]}";
    }
    b += "],";
    AppendMigrationsJson(&b);
    b += "}\n";
    net::HttpResponse r;
    r.SetHeader("Content-Type", "application/json");
    r.body = std::move(b);
    Finish(responder, Route::kCluster, start_ns, std::move(r));
  };

  for (size_t i = 0; i < probe->peers.size(); ++i) {
    if (probe->peers[i] == advertise_) {
      probe->reachable[i] = 1;
      continue;
    }
    probe->pending++;
  }
  if (probe->pending == 0) {
    render();
    return;
  }
  auto shared_render = std::make_shared<decltype(render)>(std::move(render));
  for (size_t i = 0; i < probe->peers.size(); ++i) {
    if (probe->reachable[i] != -1) continue;
    net::OutboundRequest req;
    req.target = "/health";
    req.timeout_ms = std::min<uint64_t>(options_.config.forward_timeout_ms, 1000);
    client_->Request(probe->peers[i], std::move(req),
                     [probe, i, shared_render](net::ClientResult& result) {
                       probe->reachable[i] =
                           result.error == net::ClientError::kNone && result.response.status == 200;
                       if (--probe->pending == 0) (*shared_render)();
                     });
  }
}

}  // namespace distkv
