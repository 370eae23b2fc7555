// The primary's side of replication; the mechanism is described in
// primary.h, the wire format in stream_format.h. What it reports (/stats,
// /metrics) is in primary_status.cc.
#include "src/replication/primary.h"

#include <algorithm>
#include <cinttypes>
#include <utility>

#include "net/uv_handle.h"
#include "src/obs/log.h"
#include "src/obs/metrics.h"
#include "src/obs/prometheus.h"
#include "src/replication/stream_format.h"
#include "storage/number.h"

namespace distkv {

namespace {

// The query parameters both replication endpoints take.
struct ReplicaParams {
  std::string replica;
  uint64_t lsn = 0;
  bool has_lsn = false;
  std::string shard;
  uint64_t history = 0;
  uint64_t epoch = 0;     // 0 when the replica names none
  bool snapshot = false;  // the replica takes a snapshot where the log cannot serve it
};

// Reads replica=, shard= and the LSN parameter called lsn_name; false with
// *error (a 400) when one is missing or malformed.
bool ParseReplicaParams(const net::HttpRequest& request, std::string_view lsn_name,
                        ReplicaParams* out, net::HttpResponse* error) {
  std::vector<std::pair<std::string, std::string>> params;
  if (!net::ParseQuery(request.query, &params)) {
    *error = net::MakeErrorResponse(400, "bad_query", "the query string has a malformed %-escape");
    return false;
  }
  for (const auto& [name, value] : params) {
    if (name == "replica") {
      out->replica = value;
    } else if (name == "shard") {
      out->shard = value;
    } else if (name == "history") {
      if (!ParseHistoryName(value, &out->history)) {
        *error = net::MakeErrorResponse(400, "bad_history", "history must be 16 hex digits");
        return false;
      }
    } else if (name == "epoch") {
      if (!storage::ParseUint(value, 10, &out->epoch)) {
        *error = net::MakeErrorResponse(400, "bad_epoch", "epoch must be a decimal number");
        return false;
      }
    } else if (name == "snapshot") {
      out->snapshot = value == "1";
    } else if (name == lsn_name) {
      if (!storage::ParseUint(value, 10, &out->lsn)) {
        *error = net::MakeErrorResponse(400, "bad_lsn",
                                        std::string(lsn_name) + " must be a decimal LSN");
        return false;
      }
      out->has_lsn = true;
    }
  }
  if (out->replica.empty() || !out->has_lsn) {
    *error = net::MakeErrorResponse(
        400, "missing_parameter",
        request.path + " needs ?" + std::string(lsn_name) + "=<LSN>&replica=<host:port>");
    return false;
  }
  return true;
}

}  // namespace

ReplicationPrimary::ReplicationPrimary(uv_loop_t* loop, storage::Store* store,
                                       ReplicationPrimaryOptions options)
    : loop_(loop),
      store_(store),
      options_(std::move(options)),
      acks_(loop, options_.replicas, store->durable_lsn(), StreamClockUs(),
            options_.max_batch_times),
      alive_(std::make_shared<bool>(true)) {
  for (const auto& address : options_.replicas) replicas_[address];
  idle_ = new uv_idle_t;
  uv_idle_init(loop_, idle_);
  idle_->data = this;
  drain_timer_ = new uv_timer_t;
  uv_timer_init(loop_, drain_timer_);
  drain_timer_->data = this;
  heartbeat_timer_ = new uv_timer_t;
  uv_timer_init(loop_, heartbeat_timer_);
  heartbeat_timer_->data = this;
  uv_timer_start(heartbeat_timer_, OnHeartbeatTimer, options_.heartbeat_ms, options_.heartbeat_ms);
}

ReplicationPrimary::~ReplicationPrimary() {
  *alive_ = false;
  Stop();
}

void ReplicationPrimary::Stop() {
  if (!stopped_) {
    stopped_ = true;
    for (auto& [address, replica] : replicas_) {
      if (replica.session) EndSession(replica.session, "the primary is stopping");
    }
    acks_.Stop();
  }
  net::CloseAndDelete(idle_);
  net::CloseAndDelete(drain_timer_);
  net::CloseAndDelete(heartbeat_timer_);
  idle_ = nullptr;
  drain_timer_ = heartbeat_timer_ = nullptr;
}

void ReplicationPrimary::HandleReplicate(const net::HttpRequest& request,
                                         net::Responder responder) {
  auto refuse = [&](net::HttpResponse&& r) {
    counters_.streams_refused++;
    responder.Send(std::move(r));
  };
  if (stopped_) {
    refuse(net::MakeErrorResponse(503, "stopping", "the primary is shutting down; retry later"));
    return;
  }
  ReplicaParams p;
  net::HttpResponse error;
  if (!ParseReplicaParams(request, "from", &p, &error)) {
    refuse(std::move(error));
    return;
  }
  if (!p.shard.empty() && p.shard != options_.shard) {
    refuse(net::MakeErrorResponse(
        409, "wrong_shard",
        "this node is the primary of shard " + options_.shard + ", not of " + p.shard +
            "; check the replica's --shard and the sharding.toml both nodes use"));
    return;
  }
  if (RefuseUnknown(p.replica, &error)) {
    refuse(std::move(error));
    return;
  }
  // Fencing: a replica that knows a newer map than ours may know that this
  // node was deposed. Streaming to it could hand it writes the new primary
  // never had; learn the map first (stream_format.h).
  const uint64_t epoch = options_.epoch ? options_.epoch() : 0;
  if (p.epoch > epoch) {
    counters_.streams_fenced++;
    Logf(LogLevel::kWarn,
         "replica %s follows cluster map epoch %" PRIu64 ", newer than this node's %" PRIu64
         "; refusing its stream and fetching that map",
         p.replica.c_str(), p.epoch, epoch);
    net::HttpResponse r = net::MakeErrorResponse(
        409, "stale_epoch",
        "this node's cluster map (epoch " + std::to_string(epoch) +
            ") is older than the replica's (epoch " + std::to_string(p.epoch) +
            "), so it may no longer be the primary of shard " + options_.shard +
            "; it fetches the newer map, and the replica retries");
    r.SetHeader(kReplicationEpochHeader, std::to_string(epoch));
    refuse(std::move(r));
    if (options_.on_newer_epoch) options_.on_newer_epoch(p.replica, p.epoch);
    return;
  }
  // The replica's records up to its LSN must be this log's: the same
  // history, and not beyond where this log took another turn (a crash that
  // lost an unsynced tail, a promotion elsewhere) or ends.
  uint64_t fork = 0;
  const bool shares = store_->SharesHistory(p.history, p.lsn, &fork);
  std::unique_ptr<storage::LogCursor> cursor;
  storage::Status s = shares ? store_->NewLogCursor(p.lsn, &cursor) : storage::Status::OK();
  if (p.snapshot && (!shares || s.IsNotFound())) {
    // A full resync: the snapshot, then the log after it, on this stream.
    if (!shares) {
      counters_.streams_diverged++;
      Logf(LogLevel::kWarn,
           "replica %s holds history %016" PRIx64 " up to LSN %" PRIu64
           ", which is not a prefix of this primary's log (they share LSNs up to %" PRIu64
           "): it cuts what follows and takes a snapshot",
           p.replica.c_str(), p.history, p.lsn, fork);
    } else {
      counters_.streams_gone++;
      Logf(LogLevel::kWarn,
           "replica %s needs records after LSN %" PRIu64
           " that this log no longer holds (%s): it takes a snapshot",
           p.replica.c_str(), p.lsn, s.ToString().c_str());
    }
    // The log after the snapshot's LSN is anchored now: a compaction while
    // the snapshot is sent keeps the segments the cursor will read.
    std::unique_ptr<storage::SnapshotCursor> snapshot;
    s = store_->NewSnapshot(nullptr, &snapshot);
    if (s.ok()) s = store_->NewLogCursor(snapshot->lsn(), &cursor);
    if (!s.ok()) {
      refuse(net::MakeErrorResponse(500, "storage_error", s.ToString()));
      return;
    }
    StartSession(p.replica, p.lsn, shares ? std::nullopt : std::optional<uint64_t>(fork),
                 std::move(responder), std::move(cursor), std::move(snapshot));
    return;
  }
  if (!shares) {
    counters_.streams_diverged++;
    Logf(LogLevel::kError,
         "replica %s holds history %016" PRIx64 " up to LSN %" PRIu64
         ", which is not a prefix of this primary's log (they share LSNs up to %" PRIu64
         "); its data diverged and is resynced",
         p.replica.c_str(), p.history, p.lsn, fork);
    net::HttpResponse r = net::MakeErrorResponse(
        409, "history_diverged",
        "the replica's data (history " + HistoryName(p.history) + " up to LSN " +
            std::to_string(p.lsn) + ") is not a prefix of this primary's log, which shares LSNs " +
            "up to " + std::to_string(fork) + " with it; the replica cuts what follows and " +
            "resyncs");
    r.SetHeader(kReplicationForkHeader, std::to_string(fork));
    refuse(std::move(r));
    return;
  }
  if (!s.ok()) {
    if (s.IsNotFound()) {
      counters_.streams_gone++;
      Logf(LogLevel::kWarn,
           "replica %s needs records after LSN %" PRIu64
           " that this log no longer holds, and did not ask for a snapshot: %s",
           p.replica.c_str(), p.lsn, s.ToString().c_str());
      refuse(net::MakeErrorResponse(410, "log_truncated",
                                    "the primary's log no longer holds the records after LSN " +
                                        std::to_string(p.lsn) +
                                        "; ask with snapshot=1 for a full resync"));
    } else {
      Logf(LogLevel::kError, "cannot read the log for replica %s: %s", p.replica.c_str(),
           s.ToString().c_str());
      refuse(net::MakeErrorResponse(500, "storage_error", s.ToString()));
    }
    return;
  }
  StartSession(p.replica, p.lsn, std::nullopt, std::move(responder), std::move(cursor), nullptr);
}

void ReplicationPrimary::StartSession(const std::string& address, uint64_t from,
                                      std::optional<uint64_t> fork, net::Responder responder,
                                      std::unique_ptr<storage::LogCursor> cursor,
                                      std::unique_ptr<storage::SnapshotCursor> snapshot) {
  const uint64_t durable = store_->durable_lsn();
  Replica& replica = replicas_[address];
  if (replica.session) EndSession(replica.session, "the replica opened a new stream");
  auto session = std::make_shared<Session>();
  session->id = next_session_id_++;
  session->address = address;
  session->responder = responder;
  session->cursor = std::move(cursor);
  session->snapshot = std::move(snapshot);
  session->connected_ns = uv_hrtime();
  session->queue_limit = options_.max_queued_bytes;
  replica.session = session;
  replica.sent_lsn = from;
  replica.connects++;
  replica.last_seen_ns = session->connected_ns;
  counters_.streams_started++;

  net::HttpResponse head;
  head.SetHeader("Content-Type", kReplicationContentType);
  head.SetHeader(kReplicationVersionHeader, kReplicationVersion);
  head.SetHeader("X-Distkv-Durable-Lsn", std::to_string(durable));
  head.SetHeader(kReplicationHistoryHeader, HistoryName(store_->history_id()));
  head.SetHeader(kReplicationEpochHeader, std::to_string(options_.epoch ? options_.epoch() : 0));
  if (fork) head.SetHeader(kReplicationForkHeader, std::to_string(*fork));
  if (session->snapshot) {
    head.SetHeader(kReplicationSnapshotHeader, std::to_string(session->snapshot->lsn()));
  }
  session->responder.BeginStream(std::move(head));
  std::weak_ptr<bool> alive = alive_;
  session->responder.OnClose([this, alive, address = address, id = session->id]() {
    if (auto a = alive.lock(); a && *a) OnSessionClosed(address, id);
  });
  // A heartbeat first, so the replica knows where the primary is before the
  // first records arrive.
  std::string hb;
  AppendHeartbeatFrame(&hb, durable, StreamClockUs());
  if (session->snapshot) {
    const storage::SnapshotCursor& snap = *session->snapshot;
    session->snapshot_lsn = snap.lsn();
    session->snapshot_started_ns = session->connected_ns;
    replica.resyncs++;
    counters_.resyncs_started++;
    AppendSnapshotBeginFrame(&hb, durable, StreamClockUs(), snap.lsn(),
                             store_->HistoryAt(snap.lsn()), snap.records(), snap.bytes());
    Note("replica " + address + " connected: full resync, a snapshot of " +
         std::to_string(snap.records()) + " keys (" + std::to_string(snap.bytes()) +
         " bytes) as of LSN " + std::to_string(snap.lsn()) + ", then the log after it" +
         (fork ? " (its history forked after LSN " + std::to_string(*fork) + ")"
               : " (its LSN " + std::to_string(from) + " is no longer in the log)"));
  } else {
    Note("replica " + address + " connected: streaming after LSN " + std::to_string(from) +
         " (durable here: " + std::to_string(durable) + ")");
  }
  session->responder.WriteChunk(hb);
  counters_.heartbeats_sent++;
  Pump(session);
  // It holds what it asks after, unless it takes a snapshot.
  if (!session->snapshot && !fork) acks_.Ack(address, from);
  UpdateScheduling();
}

net::HttpResponse ReplicationPrimary::HandleAck(const net::HttpRequest& request) {
  if (stopped_) return net::MakeErrorResponse(503, "stopping", "the primary is shutting down");
  ReplicaParams p;
  net::HttpResponse error;
  if (!ParseReplicaParams(request, "lsn", &p, &error)) return error;
  if (!p.shard.empty() && p.shard != options_.shard) {
    return net::MakeErrorResponse(
        409, "wrong_shard",
        "this node is the primary of shard " + options_.shard + ", not of " + p.shard);
  }
  if (RefuseUnknown(p.replica, &error)) return error;
  const uint64_t durable = store_->durable_lsn();
  uint64_t fork = 0;
  if (!store_->SharesHistory(p.history, p.lsn, &fork)) {
    // Counting it could acknowledge writes this primary never made durable,
    // or records of another history at the same LSNs.
    return net::MakeErrorResponse(
        409, "history_diverged",
        "acknowledged LSN " + std::to_string(p.lsn) + " of history " + HistoryName(p.history) +
            " is not in this primary's log (durable LSN " + std::to_string(durable) + ")");
  }
  replicas_[p.replica].last_seen_ns = uv_hrtime();
  acks_.Ack(p.replica, p.lsn);
  net::HttpResponse r;
  r.SetHeader("Content-Type", "application/json");
  JsonWriter w(&r.body);
  w.BeginObject();
  w.Field("acked_lsn", acks_.acked_lsn(p.replica));
  w.Field("durable_lsn", durable);
  w.EndObject();
  r.body += "\n";
  return r;
}

void ReplicationPrimary::OnDurable(uint64_t durable_lsn) {
  if (stopped_) return;
  acks_.OnDurable(durable_lsn, StreamClockUs());
  std::vector<std::shared_ptr<Session>> live;
  for (auto& [address, replica] : replicas_) {
    if (replica.session && replica.session->phase == Phase::kLive) live.push_back(replica.session);
  }
  for (auto& s : live) Pump(s);
  UpdateScheduling();
}

void ReplicationPrimary::Pump(const std::shared_ptr<Session>& session) {
  if (session->closed) return;
  Replica& replica = replicas_[session->address];
  const size_t queued = session->responder.queued_bytes();
  if (queued > session->queue_limit) {
    counters_.overflow_disconnects++;
    EndSession(session, "its send queue passed the limit");
    return;
  }
  if (queued > options_.low_water_bytes) {
    if (session->phase != Phase::kBlocked) {
      session->phase = Phase::kBlocked;
      session->blocked_queued = queued;
      session->blocked_since_ms = uv_now(loop_);
    }
    return;
  }
  if (session->snapshot) {
    PumpSnapshot(session);
    return;
  }
  std::string& frame = session->frame;
  frame.clear();
  const size_t start = BeginRecordsFrame(&frame);
  storage::Status s = session->cursor->Next(&frame, options_.slice_bytes);
  if (!s.ok()) {
    Logf(LogLevel::kError, "reading the log for replica %s failed: %s", session->address.c_str(),
         s.ToString().c_str());
    EndSession(session, "reading the log failed");
    return;
  }
  const uint64_t durable = store_->durable_lsn();
  const uint64_t position = session->cursor->position();
  if (FinishRecordsFrame(&frame, start, durable, acks_.DurableTimeUs(position))) {
    // The LSN span: the record count where LSNs are dense (in the compacted
    // range the holes count too).
    const uint64_t records = position - replica.sent_lsn;
    Send(session, records);
    if (session->closed) return;
  }
  session->phase = position >= durable ? Phase::kLive : Phase::kCatchUp;
}

void ReplicationPrimary::Send(const std::shared_ptr<Session>& session, uint64_t records) {
  Replica& replica = replicas_[session->address];
  std::string& frame = session->frame;
  session->queue_limit =
      std::max(session->queue_limit, options_.low_water_bytes + frame.size() + (64u << 10));
  session->responder.WriteChunk(frame);
  if (!session->snapshot) replica.sent_lsn = session->cursor->position();
  replica.records_sent += records;
  replica.bytes_sent += frame.size();
  counters_.records_sent += records;
  counters_.bytes_sent += frame.size();
  counters_.frames_sent++;
  if (frame.capacity() > 4 * options_.slice_bytes) std::string().swap(frame);  // a huge record
}

void ReplicationPrimary::PumpSnapshot(const std::shared_ptr<Session>& session) {
  storage::SnapshotCursor& snap = *session->snapshot;
  std::string& frame = session->frame;
  frame.clear();
  const size_t start = BeginRecordsFrame(&frame);
  const uint64_t read_before = snap.records_read();
  bool done = false;
  storage::Status s = snap.Next(&frame, options_.slice_bytes, &done);
  if (!s.ok()) {
    Logf(LogLevel::kError, "reading the snapshot for replica %s failed: %s",
         session->address.c_str(), s.ToString().c_str());
    EndSession(session, "reading the snapshot failed");
    return;
  }
  const uint64_t durable = store_->durable_lsn();
  const uint64_t records = snap.records_read() - read_before;
  if (FinishRecordsFrame(&frame, start, durable, 0)) {
    session->snapshot_bytes_sent += frame.size() - kFrameHeaderBytes - kFramePrefixBytes;
    counters_.snapshot_bytes_sent += frame.size() - kFrameHeaderBytes - kFramePrefixBytes;
    Send(session, records);
    if (session->closed) return;
  }
  if (!done) {
    // Nothing read: the records up to the snapshot's LSN are not durable
    // yet, and the durable listener pumps the session once they are.
    session->phase = records == 0 ? Phase::kLive : Phase::kCatchUp;
    return;
  }
  // The snapshot is sent: the log after its LSN follows, from the cursor
  // made with the snapshot (or made now, if KeepBytes let go of it).
  const uint64_t lsn = snap.lsn();
  if (!session->cursor) {
    s = store_->NewLogCursor(lsn, &session->cursor);
    if (!s.ok()) {
      Logf(LogLevel::kError, "the log after the snapshot for replica %s: %s",
           session->address.c_str(), s.ToString().c_str());
      EndSession(session, "the log after its snapshot is gone");
      return;
    }
  }
  frame.clear();
  AppendSnapshotEndFrame(&frame, durable, StreamClockUs(), lsn);
  session->responder.WriteChunk(frame);
  counters_.resyncs_sent++;
  Replica& replica = replicas_[session->address];
  replica.sent_lsn = lsn;
  replica.last_resync_ms = (uv_hrtime() - session->snapshot_started_ns) / 1'000'000;
  replica.last_resync_bytes = session->snapshot_bytes_sent;
  Note("replica " + session->address + ": snapshot as of LSN " + std::to_string(lsn) + " sent (" +
       std::to_string(snap.records()) + " keys, " + std::to_string(session->snapshot_bytes_sent) +
       " bytes in " + std::to_string(replica.last_resync_ms) + " ms); the log after it follows");
  session->snapshot.reset();
  session->phase = lsn >= durable ? Phase::kLive : Phase::kCatchUp;
}

void ReplicationPrimary::Note(std::string message) {
  if (options_.events) {
    options_.events->Add("replication", std::move(message));  // logs it too
  } else {
    LogLine(LogLevel::kInfo, message);
  }
}

void ReplicationPrimary::EndSession(std::shared_ptr<Session> session, const char* why) {
  if (session->closed) return;
  session->closed = true;
  if (session->snapshot) counters_.resyncs_failed++;
  auto it = replicas_.find(session->address);
  if (it != replicas_.end() && it->second.session == session) it->second.session.reset();
  Note("replica " + session->address + " disconnected: " + why);
  session->responder.EndStream();
}

void ReplicationPrimary::OnSessionClosed(const std::string& address, uint64_t id) {
  auto it = replicas_.find(address);
  if (it == replicas_.end() || !it->second.session || it->second.session->id != id) return;
  if (it->second.session->snapshot) counters_.resyncs_failed++;
  it->second.session->closed = true;
  it->second.session.reset();
  Note("replica " + address + " disconnected: its connection closed");
  UpdateScheduling();
}

void ReplicationPrimary::UpdateScheduling() {
  if (!idle_) return;
  bool catching_up = false, blocked = false;
  for (const auto& [address, replica] : replicas_) {
    if (!replica.session) continue;
    catching_up |= replica.session->phase == Phase::kCatchUp;
    blocked |= replica.session->phase == Phase::kBlocked;
  }
  if (catching_up) {
    uv_idle_start(idle_, OnIdle);
  } else {
    uv_idle_stop(idle_);
  }
  if (blocked) {
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(drain_timer_))) {
      uv_timer_start(drain_timer_, OnDrainTimer, 1, 1);
    }
  } else {
    uv_timer_stop(drain_timer_);
  }
}

void ReplicationPrimary::OnIdle(uv_idle_t* handle) {
  auto* self = static_cast<ReplicationPrimary*>(handle->data);
  std::vector<std::shared_ptr<Session>> due;
  for (auto& [address, replica] : self->replicas_) {
    if (replica.session && replica.session->phase == Phase::kCatchUp)
      due.push_back(replica.session);
  }
  for (auto& s : due) self->Pump(s);
  self->UpdateScheduling();
}

void ReplicationPrimary::OnDrainTimer(uv_timer_t* handle) {
  auto* self = static_cast<ReplicationPrimary*>(handle->data);
  const uint64_t now = uv_now(self->loop_);
  std::vector<std::shared_ptr<Session>> due;
  for (auto& [address, replica] : self->replicas_) {
    if (replica.session && replica.session->phase == Phase::kBlocked)
      due.push_back(replica.session);
  }
  for (auto& s : due) {
    const size_t queued = s->responder.queued_bytes();
    if (queued <= self->options_.low_water_bytes) {
      s->phase = Phase::kCatchUp;
      self->Pump(s);
      continue;
    }
    if (queued < s->blocked_queued) {
      s->blocked_queued = queued;
      s->blocked_since_ms = now;
    } else if (now - s->blocked_since_ms >= self->options_.stall_timeout_ms) {
      self->counters_.stall_disconnects++;
      self->EndSession(s, "it stopped reading the stream");
    }
  }
  self->UpdateScheduling();
}

void ReplicationPrimary::OnHeartbeatTimer(uv_timer_t* handle) {
  auto* self = static_cast<ReplicationPrimary*>(handle->data);
  self->SendHeartbeats();
  self->KeepBytes();
}

void ReplicationPrimary::SendHeartbeats() {
  const uint64_t durable = store_->durable_lsn();
  const uint64_t now_us = StreamClockUs();
  std::string hb;
  AppendHeartbeatFrame(&hb, durable, now_us);
  std::vector<std::shared_ptr<Session>> sessions;
  for (auto& [address, replica] : replicas_) {
    if (replica.session) sessions.push_back(replica.session);
  }
  for (auto& s : sessions) {
    // A blocked stream has data on its way; the heartbeat would only queue.
    if (s->closed || s->phase == Phase::kBlocked) continue;
    if (s->responder.queued_bytes() > options_.low_water_bytes) continue;
    s->responder.WriteChunk(hb);
    counters_.heartbeats_sent++;
  }
}

void ReplicationPrimary::WaitForAcks(uint64_t lsn, int needed, uint64_t timeout_ms, AckDone done) {
  acks_.Wait(lsn, needed, timeout_ms, std::move(done));
}

bool ReplicationPrimary::RefuseUnknown(const std::string& name, net::HttpResponse* error) {
  if (acks_.Knows(name)) return false;
  counters_.unknown_replicas++;
  std::string configured;
  for (const auto& [address, r] : replicas_)
    configured += (configured.empty() ? "" : ", ") + address;
  *error = net::MakeErrorResponse(403, "unknown_replica",
                                  "\"" + name + "\" is not a replica of shard " + options_.shard +
                                      " in this node's sharding.toml (its replicas: " +
                                      (configured.empty() ? "none" : configured) + ")");
  return true;
}

uint64_t ReplicationPrimary::LagMs(const std::string& address, uint64_t now_us) const {
  return acks_.LagMs(acks_.acked_lsn(address), store_->durable_lsn(), now_us);
}

size_t ReplicationPrimary::connected_replicas() const {
  size_t n = 0;
  for (const auto& [address, replica] : replicas_) n += replica.session != nullptr;
  return n;
}

uint64_t ReplicationPrimary::KeepTombstonesAfter(uint64_t max_behind) const {
  const uint64_t durable = store_->durable_lsn();
  uint64_t keep = UINT64_MAX;
  for (const auto& [address, acked] : acks_.acked()) {
    if (durable - std::min(durable, acked) <= max_behind) keep = std::min(keep, acked);
  }
  for (const auto& [address, replica] : replicas_) {
    if (replica.session && replica.session->snapshot) {
      keep = std::min(keep, replica.session->snapshot_lsn);
    }
  }
  return keep;
}

void ReplicationPrimary::KeepBytes() {
  const uint64_t pinned = store_->Stats().pinned_bytes;
  if (pinned <= options_.keep_bytes) return;
  std::vector<std::shared_ptr<Session>> holding;
  for (auto& [address, replica] : replicas_) {
    const std::shared_ptr<Session>& s = replica.session;
    if (s && s->cursor && s->cursor->reads_replaced()) holding.push_back(s);
  }
  for (auto& s : holding) {
    if (s->snapshot) {
      s->cursor.reset();  // made again from the snapshot's LSN at its end
      continue;
    }
    counters_.keep_disconnects++;
    Logf(LogLevel::kWarn,
         "replica %s still reads segments a compaction replaced (%" PRIu64
         " bytes of them wait, replica_keep_bytes is %" PRIu64
         "): ending its stream; it resumes from what the log holds now",
         s->address.c_str(), pinned, options_.keep_bytes);
    EndSession(s, "it held replaced segments past replica_keep_bytes");
  }
  UpdateScheduling();
}

uint64_t ReplicationPrimary::acked_lsn(const std::string& address) const {
  return acks_.acked_lsn(address);
}

}  // namespace distkv
