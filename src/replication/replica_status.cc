// What the replica's side of replication reports: its part of /stats
// (WriteJson) and of /metrics (WritePrometheus) — the primary it follows,
// applied and acknowledged LSNs, lag, resyncs and stream counters. The
// mechanism is in replica.cc.
#include <cinttypes>

#include "src/obs/json_writer.h"
#include "src/obs/prometheus.h"
#include "src/replication/replica.h"

namespace distkv {

void ReplicationReplica::WriteJson(JsonWriter* w) const {
  w->BeginObject();
  w->Field("role", "replica");
  w->Field("primary", options_.primary);
  w->Field("connected", connected());
  w->Field("connected_for_ms", connected() ? uv_now(loop_) - connected_since_ms_ : 0);
  w->Field("start_lsn", start_lsn_);
  w->Field("applied_lsn", store_->durable_lsn());
  w->Field("received_lsn", store_->last_lsn());
  w->Field("primary_lsn", primary_lsn_);
  w->Field("lag_records", lag_records());
  w->Field("lag_ms", lag_ms());
  w->Field("visible_lag_p50_us_le", visible_lag_.QuantileUpperBoundUs(0.5));
  w->Field("visible_lag_p99_us_le", visible_lag_.QuantileUpperBoundUs(0.99));
  w->Field("apply_lag_samples", apply_lag_.count());
  w->Field("apply_lag_p50_us_le", apply_lag_.QuantileUpperBoundUs(0.5));
  w->Field("apply_lag_p99_us_le", apply_lag_.QuantileUpperBoundUs(0.99));
  w->Field("records_received", counters_.records_received);
  w->Field("bytes_received", counters_.bytes_received);
  w->Field("frames_received", counters_.frames_received);
  w->Field("heartbeats_received", counters_.heartbeats_received);
  w->Field("unsynced_bytes", unsynced_bytes_);
  w->Field("connect_attempts", counters_.connect_attempts);
  w->Field("connects", counters_.connects);
  w->Field("reconnects", counters_.reconnects);
  w->Field("refused", counters_.refused);
  w->Field("stale_primary", counters_.stale_primary);
  w->Field("stream_errors", counters_.stream_errors);
  w->Field("backoff_ms", backoff_ms_);
  w->Field("acked_lsn", acked_lsn_);
  w->Field("acks_sent", counters_.acks_sent);
  w->Field("ack_errors", counters_.ack_errors);
  w->Field("crc_errors", counters_.crc_errors);
  w->Field("protocol_errors", counters_.protocol_errors);
  w->Field("commit_errors", counters_.commit_errors);
  w->Field("throttles", counters_.throttles);
  w->Key("resync");
  if (snap_ || installing_) {
    // A full resync on its way: how far.
    w->BeginObject();
    w->Field("state", snap_ ? "receiving" : syncing_ ? "syncing" : "installing");
    w->Field("snapshot_lsn", snap_lsn_);
    w->Field("keys", snap_records_);
    w->Field("keys_received", snap_ ? snap_->records() : snap_records_);
    w->Field("bytes", snap_bytes_);
    w->Field("bytes_received", snap_ ? snap_->bytes() : snap_bytes_);
    w->Field("elapsed_ms", uv_now(loop_) - snap_started_ms_);
    w->EndObject();
  } else {
    w->Null();
  }
  w->Field("resyncs_started", counters_.resyncs_started);
  w->Field("resyncs_completed", counters_.resyncs_completed);
  w->Field("resyncs_failed", counters_.resyncs_failed);
  w->Field("resyncs_refused_busy", counters_.resyncs_refused_busy);
  w->Field("resync_bytes", counters_.resync_bytes);
  w->Field("resync_backoff_ms", resync_backoff_ms_);
  w->Field("last_resync_lsn", last_resync_lsn_);
  w->Field("last_resync_ms", last_resync_ms_);
  w->Field("last_resync_bytes", last_resync_bytes_);
  w->Field("tails_cut", counters_.tails_cut);
  w->Field("last_error", last_error_);
  w->EndObject();
}

void ReplicationReplica::WritePrometheus(PromWriter* prom) const {
  prom->Metric("distkv_replication_connected", "gauge",
               "1 while this replica streams from its primary.", connected() ? 1 : 0);
  prom->Metric("distkv_replication_applied_lsn", "gauge",
               "Newest LSN applied and durable on this replica.", store_->durable_lsn());
  prom->Metric("distkv_replication_primary_lsn", "gauge",
               "The primary's durable LSN, as last reported to this replica.", primary_lsn_);
  prom->Metric("distkv_replication_lag_records", "gauge",
               "Records durable on the primary and not yet here.", lag_records());
  prom->Metric("distkv_replication_lag_ms", "gauge",
               "How long this replica has been missing its oldest missing record.", lag_ms());
  prom->Metric("distkv_replication_records_received_total", "counter",
               "Log records received from the primary.", counters_.records_received);
  prom->Metric("distkv_replication_bytes_received_total", "counter",
               "Stream bytes received from the primary.", counters_.bytes_received);
  prom->Metric("distkv_replication_reconnects_total", "counter",
               "Streams re-established after the first.", counters_.reconnects);
  prom->Metric("distkv_replication_stream_errors_total", "counter",
               "Streams that failed or ended (each is followed by a reconnect).",
               counters_.stream_errors);
  prom->Metric("distkv_replication_crc_errors_total", "counter",
               "Records received with a bad CRC (the stream is restarted).", counters_.crc_errors);
  prom->Metric("distkv_replication_resyncs_begun_total", "counter",
               "Full resyncs whose snapshot began to be staged here.", counters_.resyncs_started);
  prom->Metric("distkv_replication_resyncs_total", "counter",
               "Full resyncs (snapshot, then the log) completed and installed here.",
               counters_.resyncs_completed);
  prom->Metric("distkv_replication_resyncs_failed_total", "counter",
               "Full resyncs whose snapshot ended before it was complete.",
               counters_.resyncs_failed);
  prom->Metric("distkv_replication_resyncs_refused_busy_total", "counter",
               "Snapshots not begun: an earlier one still held the staging directory.",
               counters_.resyncs_refused_busy);
  prom->Metric("distkv_replication_resync_bytes_total", "counter",
               "Snapshot record bytes received, every attempt.", counters_.resync_bytes);
  prom->Metric("distkv_replication_resyncing", "gauge",
               "1 while a snapshot is received or installed.", snap_ || installing_ ? 1 : 0);
  prom->Metric("distkv_replication_acks_sent_total", "counter",
               "Acknowledgements the primary accepted.", counters_.acks_sent);
  visible_lag_.WritePrometheus(
      prom, "distkv_replication_visible_lag_seconds",
      "Time from a record being durable on the primary to being readable here.");
  apply_lag_.WritePrometheus(
      prom, "distkv_replication_apply_lag_seconds",
      "Time from a record being durable on the primary to being durable here.");
}

}  // namespace distkv
