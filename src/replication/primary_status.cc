// What the primary's side of replication reports: its part of /stats
// (WriteJson) and of /metrics (WritePrometheus) — per replica its
// acknowledged LSN, lag and stream, and the counters of streams, snapshots
// and acknowledgements. The mechanism is in primary.cc.
#include <cinttypes>

#include "src/obs/json_writer.h"
#include "src/obs/prometheus.h"
#include "src/replication/primary.h"
#include "src/replication/stream_format.h"

namespace distkv {

void ReplicationPrimary::WriteJson(JsonWriter* w) const {
  const uint64_t durable = store_->durable_lsn();
  const uint64_t now_us = StreamClockUs();
  const uint64_t now_ns = uv_hrtime();
  w->BeginObject();
  w->Field("role", "primary");
  w->Field("durable_lsn", durable);
  w->Field("connected_replicas", connected_replicas());
  w->Key("replicas");
  w->BeginArray();
  for (const auto& [address, r] : replicas_) {
    w->BeginObject();
    w->Field("address", address);
    w->Field("connected", r.session != nullptr);
    const uint64_t acked = acks_.acked_lsn(address);
    w->Field("acked_lsn", acked);
    w->Field("sent_lsn", r.sent_lsn);
    w->Field("lag_records", durable > acked ? durable - acked : 0);
    w->Field("lag_ms", LagMs(address, now_us));
    w->Field("records_sent", r.records_sent);
    w->Field("bytes_sent", r.bytes_sent);
    w->Field("queued_bytes", r.session ? r.session->responder.queued_bytes() : 0);
    w->Field("connects", r.connects);
    w->Field("resyncs", r.resyncs);
    if (r.session && r.session->snapshot) {
      // A snapshot on its way: how far.
      const storage::SnapshotCursor& snap = *r.session->snapshot;
      w->Key("resync");
      w->BeginObject();
      w->Field("snapshot_lsn", snap.lsn());
      w->Field("keys", snap.records());
      w->Field("keys_sent", snap.records_read());
      w->Field("bytes", snap.bytes());
      w->Field("bytes_sent", r.session->snapshot_bytes_sent);
      w->Field("elapsed_ms", (now_ns - r.session->snapshot_started_ns) / 1'000'000);
      w->EndObject();
    } else {
      w->Key("resync");
      w->Null();
    }
    w->Field("last_resync_ms", r.last_resync_ms);
    w->Field("last_resync_bytes", r.last_resync_bytes);
    w->Key("last_seen_ms_ago");
    if (r.last_seen_ns == 0) {
      w->Null();
    } else {
      w->Value((now_ns - r.last_seen_ns) / 1'000'000);
    }
    w->EndObject();
  }
  w->EndArray();
  w->Field("streams_started", counters_.streams_started);
  w->Field("streams_refused", counters_.streams_refused);
  w->Field("streams_gone", counters_.streams_gone);
  w->Field("streams_diverged", counters_.streams_diverged);
  w->Field("streams_fenced", counters_.streams_fenced);
  w->Field("resyncs_started", counters_.resyncs_started);
  w->Field("resyncs_sent", counters_.resyncs_sent);
  w->Field("resyncs_failed", counters_.resyncs_failed);
  w->Field("snapshot_bytes_sent", counters_.snapshot_bytes_sent);
  w->Field("history", HistoryName(store_->history_id()));
  w->Field("overflow_disconnects", counters_.overflow_disconnects);
  w->Field("stall_disconnects", counters_.stall_disconnects);
  w->Field("keep_disconnects", counters_.keep_disconnects);
  w->Field("records_sent", counters_.records_sent);
  w->Field("bytes_sent", counters_.bytes_sent);
  w->Field("frames_sent", counters_.frames_sent);
  w->Field("heartbeats_sent", counters_.heartbeats_sent);
  w->Field("unknown_replicas", counters_.unknown_replicas);
  w->Field("acks_received", acks_.acks_received());
  w->Field("ack_waits", acks_.waits());
  w->Field("ack_waiting", acks_.waiting());
  w->Field("ack_timeouts", acks_.timeouts());
  w->EndObject();
}

void ReplicationPrimary::WritePrometheus(PromWriter* prom) const {
  prom->Metric("distkv_replication_connected_replicas", "gauge",
               "Replicas streaming from this primary.", connected_replicas());
  prom->Metric("distkv_replication_records_sent_total", "counter",
               "Log records streamed to replicas.", counters_.records_sent);
  prom->Metric("distkv_replication_bytes_sent_total", "counter",
               "Bytes of frames streamed to replicas.", counters_.bytes_sent);
  prom->Metric("distkv_replication_streams_started_total", "counter",
               "Replication streams opened by replicas.", counters_.streams_started);
  prom->Metric("distkv_replication_resyncs_started_total", "counter",
               "Full resyncs begun: streams that start with a snapshot.",
               counters_.resyncs_started);
  prom->Metric("distkv_replication_resyncs_sent_total", "counter",
               "Full resyncs whose snapshot was sent to its end.", counters_.resyncs_sent);
  prom->Metric("distkv_replication_resyncs_send_failed_total", "counter",
               "Full resyncs whose stream ended before their snapshot was sent.",
               counters_.resyncs_failed);
  prom->Metric("distkv_replication_snapshot_bytes_sent_total", "counter",
               "Bytes of records sent in snapshots.", counters_.snapshot_bytes_sent);
  prom->Metric("distkv_replication_streams_refused_total", "counter",
               "Replication requests answered with an error (410 included).",
               counters_.streams_refused);
  prom->Metric("distkv_replication_disconnects_total", "counter",
               "Streams ended because a replica did not drain its queue.",
               counters_.overflow_disconnects + counters_.stall_disconnects);
  prom->Metric("distkv_replication_acks_received_total", "counter",
               "Acknowledgements received from replicas.", acks_.acks_received());
  prom->Metric("distkv_replication_ack_waits_total", "counter",
               "Writes that waited for replicas (?ack=replica or min_acks).", acks_.waits());
  prom->Metric("distkv_replication_ack_timeouts_total", "counter",
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
  for (const PerReplica& g : kGauges) {
    prom->Family(g.name, "gauge", g.help);
    for (const auto& [address, r] : replicas_) {
      prom->Sample(g.name, {{"replica", address}}, g.value(*this, address, r, durable, now_us));
    }
  }
}

}  // namespace distkv
