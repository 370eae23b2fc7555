// The node's status pages: /stats (JSON), /metrics (Prometheus text) and
// /cluster (/internal/digest is in digest.cc). They only read the node's
// parts and counters; the request path is in node.cc.
#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "src/node/node.h"

namespace distkv {

void WriteShardHead(JsonWriter* w, const ShardConfig& s) {
  w->Field("name", s.name);
  w->Field("idx", s.idx);
  w->Key("slots");
  w->BeginArray();
  for (const auto& range : s.slots) {
    w->BeginArray();
    w->Value(range.first);
    w->Value(range.last);
    w->EndArray();
  }
  w->EndArray();
}

net::HttpResponse Node::StatsResponse() const {
  const storage::StoreStats st = store_->Stats();
  const ShardConfig& shard = map_.shards()[self_];
  const auto& pc = pipeline_->counters();
  const auto& sc = server_->counters();
  const auto& fc = forwarder_->counters();
  std::string b;
  JsonWriter json(&b);
  JsonWriter* w = &json;
  w->BeginObject();
  w->Field("role", role_name());
  w->Field("shard", shard.name);
  w->Field("address", advertise_);
  w->Field("epoch", cluster_map_.epoch);
  w->Field("uptime_s", (uv_hrtime() - started_ns_) / 1'000'000'000ull);
  w->Field("time_ms", events_.now_ms());
  w->Field("fsync", storage::FsyncModeName(options_.config.fsync));
  w->Field("keys", st.keys);
  w->Field("keys_with_ttl", st.keys_with_ttl);
  w->Field("expired_keys", expired_keys_);
  w->Field("live_bytes", st.live_bytes);
  w->Field("dead_bytes", st.dead_bytes);
  w->Field("segments", st.segments);
  w->Field("last_lsn", st.last_lsn);
  w->Field("durable_lsn", st.durable_lsn);
  w->Field("high_water_lsn", st.high_water_lsn);
  {
    char id[17];
    std::snprintf(id, sizeof(id), "%016" PRIx64, st.history_id);
    w->Field("history_id", id);
  }
  // After a failed sync the store takes no writes until a restart; say why.
  const storage::Status writable = store_->writable();
  w->Field("read_only", writable.ok() ? 0 : 1);
  if (!writable.ok()) w->Field("read_only_reason", writable.message());
  w->Field("index_bytes", st.index_bytes);
  w->Key("compaction");
  compactor_->WriteJson(w);
  w->Key("commit");
  w->BeginObject();
  w->Field("batches", pc.batches);
  w->Field("batch_records", pc.batch_records);
  w->Field("max_batch_records", pc.max_batch_records);
  w->Field("failures", pc.batch_failures);
  w->Field("batch_us", pc.batch_us);
  w->Field("batch_run_us", pc.batch_run_us);
  w->Field("lingered", pc.lingered);
  w->Field("linger_timeouts", pc.linger_timeouts);
  w->Field("linger_us", pc.linger_us);
  w->Field("reads_held", pc.reads_held);
  w->Field("syncs", st.syncs);
  w->Field("waiting", pipeline_->waiting());
  w->EndObject();
  w->Key("connections");
  w->BeginObject();
  w->Field("current", sc.connections_current);
  w->Field("accepted", sc.connections_accepted);
  w->Field("rejected", sc.connections_rejected);
  w->Field("timeouts", sc.timeouts);
  w->Field("parse_errors", sc.parse_errors);
  // Write bodies held until durable (or answered), under [server] max_staged_bytes.
  w->Field("staged_bytes", sc.staged_bytes);
  w->Field("staged_bytes_peak", sc.staged_bytes_peak);
  w->Field("staging_waits", sc.staging_waits);
  w->EndObject();
  w->Key("forwarding");
  w->BeginObject();
  w->Field("forwarded", fc.forwarded);
  w->Field("to_replica", fc.to_replica);
  w->Field("failed", fc.failed);
  w->Field("connections_opened", client_->counters().connections_opened);
  w->EndObject();
  w->Key("failover");
  w->BeginObject();
  w->Field("maps_adopted", failover_.maps_adopted);
  w->Field("promotions", failover_.promotions);
  w->Field("demotions", failover_.demotions);
  w->Field("writes_fenced", failover_.writes_fenced);
  w->Field("tails_cut", failover_.tails_cut);
  w->Field("lost_bytes", failover_.lost_bytes);
  w->EndObject();
  w->Key("replication");
  if (primary_) primary_->WriteJson(w);
  if (replica_) replica_->WriteJson(w);
  if (!primary_ && !replica_) w->Null();
  w->Key("requests");
  w->BeginObject();
  w->Field("total", metrics_.total());
  w->Field("p50_us_le", metrics_.latency().QuantileUpperBoundUs(0.5));
  w->Field("p99_us_le", metrics_.latency().QuantileUpperBoundUs(0.99));
  w->Key("kv_latency");
  metrics_.kv_latency().WriteJson(w);
  w->Key("by_route");
  metrics_.WriteJson(w);
  w->EndObject();
  w->Key("progress");
  progress_.WriteJson(w);
  w->Key("events");
  events_.WriteJson(w);
  w->EndObject();
  return net::MakeJsonResponse(std::move(b));
}

net::HttpResponse Node::MetricsResponse() const {
  const storage::StoreStats st = store_->Stats();
  const auto& pc = pipeline_->counters();
  std::string b;
  PromWriter writer(&b);
  PromWriter* prom = &writer;
  prom->Metric("distkv_keys", "gauge", "Live keys in this node's store.", st.keys);
  prom->Metric("distkv_read_only", "gauge",
               "1 after a failed sync: the store takes no writes until restarted.",
               st.read_only ? 1 : 0);
  prom->Metric("distkv_live_bytes", "gauge", "Bytes of live records.", st.live_bytes);
  prom->Metric("distkv_dead_bytes", "gauge", "Bytes of overwritten or deleted records.",
               st.dead_bytes);
  prom->Metric("distkv_segments", "gauge", "Segment files.", st.segments);
  prom->Metric("distkv_last_lsn", "gauge", "Newest LSN staged.", st.last_lsn);
  prom->Metric("distkv_durable_lsn", "gauge", "Newest LSN made durable.", st.durable_lsn);
  prom->Metric("distkv_fsync_batches_total", "counter", "Group-commit batches completed.",
               pc.batches);
  prom->Metric("distkv_fsync_batch_records_total", "counter",
               "Records in completed batches (divide by batches for the mean batch size).",
               pc.batch_records);
  prom->Metric("distkv_fsync_batch_failures_total", "counter", "Batches that failed.",
               pc.batch_failures);
  prom->Metric("distkv_fsync_batch_microseconds_total", "counter",
               "Time batches took from leaving the loop to completing (write + sync).",
               pc.batch_us);
  prom->Metric("distkv_fsync_batch_run_microseconds_total", "counter",
               "Of that time, what thread-pool threads spent writing and syncing.",
               pc.batch_run_us);
  prom->Metric("distkv_fsync_lingered_total", "counter",
               "Batches held back to gather the writers the last batch answered.", pc.lingered);
  prom->Metric("distkv_fsync_linger_timeouts_total", "counter",
               "Held batches started because the wait for writers ran out.", pc.linger_timeouts);
  prom->Metric("distkv_fsync_linger_microseconds_total", "counter",
               "Time batches were held back to gather writers.", pc.linger_us);
  prom->Metric("distkv_reads_held_total", "counter",
               "Reads that waited for the batch holding what they read to be durable.",
               pc.reads_held);
  prom->Metric("distkv_fsyncs_total", "counter", "fdatasync calls.", st.syncs);
  prom->Metric("distkv_connections", "gauge", "Open client connections.",
               server_->counters().connections_current);
  prom->Metric("distkv_staged_bytes", "gauge",
               "Request bodies held until their write is durable (or answered).",
               server_->counters().staged_bytes);
  prom->Metric("distkv_staging_waits_total", "counter",
               "Requests whose connection stopped being read for want of staging room.",
               server_->counters().staging_waits);
  prom->Metric("distkv_forwarded_total", "counter", "Requests forwarded to other shards.",
               forwarder_->counters().forwarded);
  prom->Metric("distkv_forward_failures_total", "counter",
               "Forwarded requests whose owner could not be reached.",
               forwarder_->counters().failed);
  compactor_->WritePrometheus(prom);
  if (primary_) primary_->WritePrometheus(prom);
  if (replica_) replica_->WritePrometheus(prom);
  metrics_.WritePrometheus(prom);
  net::HttpResponse r;
  r.SetHeader("Content-Type", "text/plain; version=0.0.4");
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
    std::string b;
    JsonWriter w(&b);
    w.BeginObject();
    w.Field("slots", kSlotCount);
    w.Field("epoch", cluster_map_.epoch);
    if (coordinator_) {
      w.Key("coordinator");
      coordinator_->WriteJson(&w);
    }
    w.Field("routing", options_.config.routing == RoutingMode::kProxy ? "proxy" : "redirect");
    w.Key("self");
    w.BeginObject();
    w.Field("shard", self.name);
    w.Field("role", role_name());
    w.Field("address", advertise_);
    w.EndObject();
    w.Key("shards");
    w.BeginArray();
    auto node = [&](const std::string& address) {
      w.BeginObject();
      w.Field("address", address);
      w.Field("reachable", probe->reachable[i++] == 1);
      w.EndObject();
    };
    for (const ShardConfig& s : map_.shards()) {
      w.BeginObject();
      WriteShardHead(&w, s);
      w.Key("primary");
      node(s.address);
      w.Key("replicas");
      w.BeginArray();
      for (const std::string& replica : s.replicas) node(replica);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    WriteMigrationsJson(&w);
    w.EndObject();
    Finish(responder, Route::kCluster, start_ns, net::MakeJsonResponse(std::move(b)));
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
