// What the primary's side of replication reports: its part of /stats
// (AppendJson) and of /metrics (AppendPrometheus) — per replica its
// acknowledged LSN, lag and stream, and the counters of streams, snapshots
// and acknowledgements. The mechanism is in primary.cc.
#include <cinttypes>

#include "src/obs/metrics.h"
#include "src/obs/prometheus.h"
#include "src/replication/primary.h"
#include "src/replication/stream_format.h"

namespace distkv {

void ReplicationPrimary::AppendJson(std::string* out) const {
  const uint64_t durable = store_->durable_lsn();
  const uint64_t now_us = StreamClockUs();
  const uint64_t now_ns = uv_hrtime();
  std::string& b = *out;
  b += "{";
  AppendJsonField(&b, "role", "primary");
  AppendJsonField(&b, "durable_lsn", durable);
  AppendJsonField(&b, "connected_replicas", connected_replicas());
  b += "\"replicas\":[";
  bool first = true;
  for (const auto& [address, r] : replicas_) {
    if (!first) b += ",";
    first = false;
    b += "{";
    AppendJsonField(&b, "address", address);
    b += std::string("\"connected\":") + (r.session ? "true" : "false") + ",";
    const uint64_t acked = acks_.acked_lsn(address);
    AppendJsonField(&b, "acked_lsn", acked);
    AppendJsonField(&b, "sent_lsn", r.sent_lsn);
    AppendJsonField(&b, "lag_records", durable > acked ? durable - acked : 0);
    AppendJsonField(&b, "lag_ms", LagMs(address, now_us));
    AppendJsonField(&b, "records_sent", r.records_sent);
    AppendJsonField(&b, "bytes_sent", r.bytes_sent);
    AppendJsonField(&b, "queued_bytes", r.session ? r.session->responder.queued_bytes() : 0);
    AppendJsonField(&b, "connects", r.connects);
    AppendJsonField(&b, "resyncs", r.resyncs);
    if (r.session && r.session->snapshot) {
      // A snapshot on its way: how far.
      const storage::SnapshotCursor& snap = *r.session->snapshot;
      b += "\"resync\":{";
      AppendJsonField(&b, "snapshot_lsn", snap.lsn());
      AppendJsonField(&b, "keys", snap.records());
      AppendJsonField(&b, "keys_sent", snap.records_read());
      AppendJsonField(&b, "bytes", snap.bytes());
      AppendJsonField(&b, "bytes_sent", r.session->snapshot_bytes_sent);
      AppendJsonField(&b, "elapsed_ms", (now_ns - r.session->snapshot_started_ns) / 1'000'000,
                      false);
      b += "},";
    } else {
      b += "\"resync\":null,";
    }
    AppendJsonField(&b, "last_resync_ms", r.last_resync_ms);
    AppendJsonField(&b, "last_resync_bytes", r.last_resync_bytes);
    if (r.last_seen_ns == 0) {
      b += "\"last_seen_ms_ago\":null";
    } else {
      AppendJsonField(&b, "last_seen_ms_ago", (now_ns - r.last_seen_ns) / 1'000'000, false);
    }
    b += "}";
  }
  b += "],";
  AppendJsonField(&b, "streams_started", counters_.streams_started);
  AppendJsonField(&b, "streams_refused", counters_.streams_refused);
  AppendJsonField(&b, "streams_gone", counters_.streams_gone);
  AppendJsonField(&b, "streams_diverged", counters_.streams_diverged);
  AppendJsonField(&b, "streams_fenced", counters_.streams_fenced);
  AppendJsonField(&b, "resyncs_started", counters_.resyncs_started);
  AppendJsonField(&b, "resyncs_sent", counters_.resyncs_sent);
  AppendJsonField(&b, "snapshot_bytes_sent", counters_.snapshot_bytes_sent);
  AppendJsonField(&b, "history", HistoryName(store_->history_id()));
  AppendJsonField(&b, "overflow_disconnects", counters_.overflow_disconnects);
  AppendJsonField(&b, "stall_disconnects", counters_.stall_disconnects);
  AppendJsonField(&b, "keep_disconnects", counters_.keep_disconnects);
  AppendJsonField(&b, "records_sent", counters_.records_sent);
  AppendJsonField(&b, "bytes_sent", counters_.bytes_sent);
  AppendJsonField(&b, "frames_sent", counters_.frames_sent);
  AppendJsonField(&b, "heartbeats_sent", counters_.heartbeats_sent);
  AppendJsonField(&b, "unknown_replicas", counters_.unknown_replicas);
  AppendJsonField(&b, "acks_received", acks_.acks_received());
  AppendJsonField(&b, "ack_waits", acks_.waits());
  AppendJsonField(&b, "ack_waiting", acks_.waiting());
  AppendJsonField(&b, "ack_timeouts", acks_.timeouts(), false);
  b += "}";
}

void ReplicationPrimary::AppendPrometheus(std::string* out) const {
  AppendPromMetric(out, "distkv_replication_connected_replicas", "gauge",
                   "Replicas streaming from this primary.", connected_replicas());
  AppendPromMetric(out, "distkv_replication_records_sent_total", "counter",
                   "Log records streamed to replicas.", counters_.records_sent);
  AppendPromMetric(out, "distkv_replication_bytes_sent_total", "counter",
                   "Bytes of frames streamed to replicas.", counters_.bytes_sent);
  AppendPromMetric(out, "distkv_replication_streams_started_total", "counter",
                   "Replication streams opened by replicas.", counters_.streams_started);
  AppendPromMetric(out, "distkv_replication_resyncs_started_total", "counter",
                   "Full resyncs begun: streams that start with a snapshot.",
                   counters_.resyncs_started);
  AppendPromMetric(out, "distkv_replication_resyncs_sent_total", "counter",
                   "Full resyncs whose snapshot was sent to its end.", counters_.resyncs_sent);
  AppendPromMetric(out, "distkv_replication_snapshot_bytes_sent_total", "counter",
                   "Bytes of records sent in snapshots.", counters_.snapshot_bytes_sent);
  AppendPromMetric(out, "distkv_replication_streams_refused_total", "counter",
                   "Replication requests answered with an error (410 included).",
                   counters_.streams_refused);
  AppendPromMetric(out, "distkv_replication_disconnects_total", "counter",
                   "Streams ended because a replica did not drain its queue.",
                   counters_.overflow_disconnects + counters_.stall_disconnects);
  AppendPromMetric(out, "distkv_replication_acks_received_total", "counter",
                   "Acknowledgements received from replicas.", acks_.acks_received());
  AppendPromMetric(out, "distkv_replication_ack_waits_total", "counter",
                   "Writes that waited for replicas (?ack=replica or min_acks).", acks_.waits());
  AppendPromMetric(out, "distkv_replication_ack_timeouts_total", "counter",
                   "Writes answered 504 because too few replicas acknowledged them in time.",
                   acks_.timeouts());
  if (replicas_.empty()) return;
  const uint64_t durable = store_->durable_lsn();
  const uint64_t now_us = StreamClockUs();
  struct PerReplica {
    const char* name;
    const char* help;
    uint64_t (*value)(const ReplicationPrimary&, const std::string&, const Replica&, uint64_t,
                      uint64_t);
  };
  static constexpr PerReplica kGauges[] = {
      {"distkv_replica_connected", "1 while the replica streams from this primary.",
       [](const ReplicationPrimary&, const std::string&, const Replica& r, uint64_t,
          uint64_t) -> uint64_t { return r.session != nullptr; }},
      {"distkv_replica_acked_lsn", "Newest LSN the replica acknowledged as durable.",
       [](const ReplicationPrimary& self, const std::string& a, const Replica&, uint64_t,
          uint64_t) { return self.acks_.acked_lsn(a); }},
      {"distkv_replica_lag_records",
       "Records durable here and not yet acknowledged by the replica.",
       [](const ReplicationPrimary& self, const std::string& a, const Replica&, uint64_t durable,
          uint64_t) -> uint64_t {
         const uint64_t acked = self.acks_.acked_lsn(a);
         return durable > acked ? durable - acked : 0;
       }},
      {"distkv_replica_lag_ms", "Age of the oldest record the replica has not acknowledged.",
       [](const ReplicationPrimary& self, const std::string& a, const Replica&, uint64_t,
          uint64_t now_us) { return self.LagMs(a, now_us); }},
  };
  PromWriter prom(out);
  for (const PerReplica& g : kGauges) {
    prom.Family(g.name, "gauge", g.help);
    for (const auto& [address, r] : replicas_) {
      prom.Sample(g.name, {{"replica", address}}, g.value(*this, address, r, durable, now_us));
    }
  }
}

}  // namespace distkv
