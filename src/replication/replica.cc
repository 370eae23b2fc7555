// The replica's side of replication; the mechanism is described in
// replication_replica.h, the wire format in replication_stream.h.
#include "src/replication/replica.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "net/uv_handle.h"
#include "src/api/kv_request.h"
#include "src/obs/log.h"
#include "storage/record_format.h"

namespace distkv {

namespace {

// A Prometheus histogram (seconds) from a LatencyHistogram's fixed buckets.
void AppendHistogram(std::string* out, const char* name, const char* help,
                     const LatencyHistogram& h) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  char line[256];  // one line each: a name is well under 200 bytes
  for (size_t i = 0; i < LatencyHistogram::kBoundsUs.size(); ++i) {
    cumulative += h.buckets()[i];
    snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
             static_cast<double>(LatencyHistogram::kBoundsUs[i]) / 1e6, cumulative);
    *out += line;
  }
  snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h.count());
  *out += line;
  snprintf(line, sizeof line, "%s_sum %g\n", name, static_cast<double>(h.sum_us()) / 1e6);
  *out += line;
  snprintf(line, sizeof line, "%s_count %" PRIu64 "\n", name, h.count());
  *out += line;
}

constexpr size_t kMaxBehindEntries = 65536;
constexpr size_t kMaxErrorBody = 512;

}  // namespace

ReplicationReplica::ReplicationReplica(uv_loop_t* loop, storage::Store* store,
                                       CommitPipeline* pipeline, net::HttpClient* client,
                                       ReplicationReplicaOptions options)
    : loop_(loop),
      store_(store),
      pipeline_(pipeline),
      client_(client),
      options_(std::move(options)),
      decoder_(options_.max_frame_bytes),
      backoff_ms_(options_.min_backoff_ms),
      alive_(std::make_shared<bool>(true)) {
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  acked_lsn_ = store_->durable_lsn();
}

ReplicationReplica::~ReplicationReplica() {
  *alive_ = false;
  Stop();
}

void ReplicationReplica::Start() {
  if (!net::SplitHostPort(options_.primary, &host_, &port_)) {
    last_error_ = "the primary's address \"" + options_.primary + "\" is not host:port";
    Logf(LogLevel::kError, "replication: %s", last_error_.c_str());
    return;
  }
  start_lsn_ = store_->last_lsn();
  Logf(LogLevel::kInfo, "replica of shard %s: following primary %s from LSN %" PRIu64,
       options_.shard.c_str(), options_.primary.c_str(), start_lsn_);
  Connect();
}

void ReplicationReplica::Stop() {
  if (state_ != State::kStopped) {
    state_ = State::kStopped;
    stream_id_++;  // whatever the old stream still reports is ignored
    if (conn_) conn_->Close();
  }
  if (timer_) {
    net::CloseAndDelete(timer_);
    timer_ = nullptr;
  }
}

void ReplicationReplica::Connect() {
  if (state_ == State::kStopped) return;
  const uint64_t id = ++stream_id_;
  state_ = State::kConnecting;
  decoder_.Reset();
  head_status_ = 0;
  head_fork_ = false;
  error_body_.clear();
  abort_reason_.clear();
  throttled_ = false;
  counters_.connect_attempts++;

  net::ClientOptions co;
  co.connect_timeout_ms = options_.connect_timeout_ms;
  co.request_timeout_ms = options_.idle_timeout_ms;
  co.tls = options_.tls;
  conn_ = std::make_unique<net::ClientConnection>(loop_, host_, port_, co);

  net::OutboundRequest req;
  req.method = "GET";
  req.target = "/internal/replicate?from=" + std::to_string(store_->last_lsn()) +
               "&history=" + HistoryName(store_->HistoryAt(store_->last_lsn())) +
               "&replica=" + PercentEncode(options_.self_address) +
               "&shard=" + PercentEncode(options_.shard);
  if (options_.epoch) req.target += "&epoch=" + std::to_string(options_.epoch());
  req.timeout_ms = options_.idle_timeout_ms;
  req.headers = options_.headers;
  std::weak_ptr<bool> alive = alive_;
  auto current = [this, alive, id]() {
    auto a = alive.lock();
    return a && *a && id == stream_id_;
  };
  req.on_head = [this, current](const net::HttpResponse& head) {
    if (current()) OnHead(head);
  };
  req.on_body = [this, current](std::string_view chunk) { return current() && OnBody(chunk); };
  conn_->Submit(std::move(req), [this, current](net::ClientResult& result) {
    if (current()) OnStreamEnd(result);
  });
}

void ReplicationReplica::OnHead(const net::HttpResponse& head) {
  head_status_ = head.status;
  if (head.status != 200) {
    // The error body follows; OnStreamEnd reports it.
    const std::string* fork = head.header(kReplicationForkHeader);
    head_fork_ = fork != nullptr;
    if (fork) fork_lsn_ = std::strtoull(fork->c_str(), nullptr, 10);
    return;
  }
  // A primary behind this node's map may have been deposed: nothing of its
  // stream is applied (OnBody ends it at its first bytes).
  const uint64_t epoch = options_.epoch ? options_.epoch() : 0;
  const std::string* theirs = head.header(kReplicationEpochHeader);
  if (theirs != nullptr && std::strtoull(theirs->c_str(), nullptr, 10) < epoch) {
    counters_.stale_primary++;
    abort_reason_ = "the primary's cluster map (epoch " + *theirs +
                    ") is older than this node's (" + std::to_string(epoch) +
                    "): it may have been deposed; not following it";
    return;
  }
  // The records that follow belong to the primary's current history: the
  // store records it before applying any.
  uint64_t id = 0;
  const std::string* h = head.header(kReplicationHistoryHeader);
  if (h && ParseHistoryName(*h, &id)) store_->AdoptHistory(id);
  state_ = State::kStreaming;
  counters_.connects++;
  if (counters_.connects > 1) counters_.reconnects++;
  // The backoff is not reset here: a primary that accepts the stream but whose
  // records this replica cannot take (full disk, bad record) would otherwise
  // be reconnected to, and the log re-sent, at the minimum delay forever.
  connected_since_ms_ = uv_now(loop_);
  stream_start_durable_ = store_->durable_lsn();
  stream_progressed_ = false;
  Logf(LogLevel::kInfo, "replica of shard %s: streaming from primary %s after LSN %" PRIu64,
       options_.shard.c_str(), options_.primary.c_str(), store_->last_lsn());
}

bool ReplicationReplica::OnBody(std::string_view chunk) {
  if (!abort_reason_.empty()) return false;  // refused in OnHead
  if (head_status_ != 200) {
    const size_t room = kMaxErrorBody - std::min(kMaxErrorBody, error_body_.size());
    error_body_.append(chunk.substr(0, room));
    return true;
  }
  counters_.bytes_received += chunk.size();
  decoder_.Feed(chunk);
  Frame frame;
  for (;;) {
    switch (decoder_.Next(&frame)) {
      case FrameDecoder::Result::kNeedMore:
        return true;
      case FrameDecoder::Result::kError:
        counters_.protocol_errors++;
        abort_reason_ = "bad frame: " + decoder_.error();
        return false;
      case FrameDecoder::Result::kFrame:
        break;
    }
    if (frame.kind == FrameKind::kHeartbeat) {
      counters_.heartbeats_received++;
      NotePrimaryLsn(frame.primary_lsn);
      MaybeSendAck();  // retries an ack that failed earlier
      continue;
    }
    if (!HandleRecords(frame)) return false;
  }
}

bool ReplicationReplica::HandleRecords(const Frame& frame) {
  counters_.frames_received++;
  std::string_view rest = frame.records;
  uint64_t last = 0;
  while (!rest.empty()) {
    storage::Record record;
    size_t used = 0;
    storage::Status s = storage::DecodeRecord(rest, &record, &used);
    if (!s.ok()) {
      if (s.IsCorruption()) {
        counters_.crc_errors++;
      } else {
        counters_.protocol_errors++;
      }
      abort_reason_ =
          "record after LSN " + std::to_string(store_->last_lsn()) + " rejected: " + s.ToString();
      break;
    }
    s = store_->Apply(record);  // refuses a hole: the next LSN must be the last + 1
    if (!s.ok()) {
      counters_.protocol_errors++;
      abort_reason_ = "cannot apply the record of LSN " + std::to_string(record.lsn) +
                      " (local log ends at " + std::to_string(store_->last_lsn()) +
                      "): " + s.ToString();
      break;
    }
    counters_.records_received++;
    last = record.lsn;
    rest.remove_prefix(used);
  }
  NotePrimaryLsn(std::max(frame.primary_lsn, last));
  if (last != 0 && frame.time_us != 0) {
    const uint64_t now = StreamClockUs();
    visible_lag_.Observe(now > frame.time_us ? now - frame.time_us : 0);
  }
  if (last != 0) {
    // Records staged before a bad one are good: they are committed either way.
    const size_t bytes = frame.records.size() - rest.size();
    unsynced_bytes_ += bytes;
    std::weak_ptr<bool> alive = alive_;
    const uint64_t stamp = frame.time_us;
    pipeline_->WhenDurable(last, [this, alive, stamp, bytes](const storage::Status& status) {
      if (auto a = alive.lock(); a && *a) OnCommitted(status, stamp, bytes);
    });
  }
  if (!abort_reason_.empty()) return false;
  if (unsynced_bytes_ > options_.max_unsynced_bytes) {
    counters_.throttles++;
    throttled_ = true;
    abort_reason_ = "the local disk fell behind the stream";
    return false;
  }
  return true;
}

void ReplicationReplica::OnCommitted(const storage::Status& status, uint64_t stamp_us,
                                     size_t bytes) {
  unsynced_bytes_ -= std::min(unsynced_bytes_, bytes);
  if (!status.ok()) {
    counters_.commit_errors++;
    last_error_ = "commit failed: " + status.ToString();
    Logf(LogLevel::kError, "replica of shard %s: %s; reconnecting from the last durable LSN",
         options_.shard.c_str(), last_error_.c_str());
    // The store undid the failed records; the stream must restart after them.
    if (state_ == State::kStreaming || state_ == State::kConnecting) {
      abort_reason_ = last_error_;
      conn_->Close();
    }
    return;
  }
  if (stamp_us != 0) {
    const uint64_t now = StreamClockUs();
    apply_lag_.Observe(now > stamp_us ? now - stamp_us : 0);
  }
  const uint64_t durable = store_->durable_lsn();
  if (state_ == State::kStreaming && durable > stream_start_durable_) stream_progressed_ = true;
  while (!behind_.empty() && behind_.front().first <= durable) behind_.pop_front();
  MaybeSendAck();
}

void ReplicationReplica::OnStreamEnd(const net::ClientResult& result) {
  if (state_ == State::kStopped) return;
  const bool was_streaming = state_ == State::kStreaming;
  state_ = State::kIdle;
  std::string reason;
  if (!abort_reason_.empty()) {
    reason = abort_reason_;
  } else if (result.error != net::ClientError::kNone) {
    reason = std::string(net::ClientErrorName(result.error)) + ": " + result.detail;
  } else if (head_status_ != 200) {
    reason = "HTTP " + std::to_string(result.response.status) + " " +
             (error_body_.empty() ? result.response.body : error_body_);
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == '\r')) reason.pop_back();
  } else {
    reason = "the primary ended the stream";
  }
  if (head_status_ != 0 && head_status_ != 200) counters_.refused++;
  // A stream that made records durable, or lasted longer than the longest
  // backoff, was healthy: its end is a new failure, retried at the minimum.
  if (was_streaming &&
      (stream_progressed_ || uv_now(loop_) - connected_since_ms_ >= options_.max_backoff_ms)) {
    backoff_ms_ = options_.min_backoff_ms;
  }
  uint64_t delay = backoff_ms_;
  if (throttled_) {
    delay = 0;  // not a failure: resume as soon as the pipeline has caught up
  } else {
    counters_.stream_errors++;
    backoff_ms_ = std::min(backoff_ms_ * 2, options_.max_backoff_ms);
  }
  last_error_ = reason;
  if (head_status_ == 409 && head_fork_ && options_.on_diverged) {
    diverged_ = true;
    Logf(LogLevel::kWarn, "replica of shard %s: %s", options_.shard.c_str(), reason.c_str());
    ScheduleReconnect(0);
    return;
  }
  Logf(throttled_ ? LogLevel::kInfo : LogLevel::kWarn,
       "replica of shard %s: %s %s: %s; reconnecting in %" PRIu64 " ms", options_.shard.c_str(),
       was_streaming ? "stream from" : "cannot stream from", options_.primary.c_str(),
       reason.c_str(), delay);
  ScheduleReconnect(delay);
}

void ReplicationReplica::ScheduleReconnect(uint64_t delay_ms) {
  if (state_ == State::kStopped || !timer_) return;
  uv_timer_start(timer_, OnTimer, delay_ms, 0);
}

void ReplicationReplica::OnTimer(uv_timer_t* timer) {
  auto* self = static_cast<ReplicationReplica*>(timer->data);
  if (self->state_ == State::kStopped) return;
  if (self->diverged_) {
    // The callback may destroy this replica: it runs from a copy.
    auto fn = self->options_.on_diverged;
    fn(self->fork_lsn_);
    return;
  }
  // Resume after the last staged LSN only once it is durable: if its batch
  // fails the store undoes it, and asking from there would leave a gap.
  std::weak_ptr<bool> alive = self->alive_;
  self->pipeline_->WhenDurable(self->store_->last_lsn(), [self, alive](const storage::Status&) {
    if (auto a = alive.lock(); a && *a) self->Connect();
  });
}

void ReplicationReplica::NotePrimaryLsn(uint64_t lsn) {
  if (lsn <= primary_lsn_) return;
  primary_lsn_ = lsn;
  if (lsn <= store_->durable_lsn()) return;
  const uint64_t now = uv_now(loop_);
  if (!behind_.empty() && (behind_.back().second == now || behind_.size() >= kMaxBehindEntries)) {
    behind_.back().first = lsn;  // same millisecond: one entry is enough
  } else {
    behind_.emplace_back(lsn, now);
  }
}

uint64_t ReplicationReplica::lag_records() const {
  const uint64_t durable = store_->durable_lsn();
  return primary_lsn_ > durable ? primary_lsn_ - durable : 0;
}

uint64_t ReplicationReplica::lag_ms() const {
  if (behind_.empty()) return 0;
  const uint64_t now = uv_now(loop_);
  return now > behind_.front().second ? now - behind_.front().second : 0;
}

void ReplicationReplica::MaybeSendAck() {
  if (state_ == State::kStopped || ack_in_flight_) return;
  const uint64_t durable = store_->durable_lsn();
  if (durable <= acked_lsn_) return;
  ack_in_flight_ = true;
  net::OutboundRequest req;
  req.method = "POST";
  req.target = "/internal/replica-ack?replica=" + PercentEncode(options_.self_address) +
               "&lsn=" + std::to_string(durable) +
               "&history=" + HistoryName(store_->HistoryAt(durable)) +
               "&shard=" + PercentEncode(options_.shard);
  req.timeout_ms = options_.ack_timeout_ms;
  req.headers = options_.headers;
  std::weak_ptr<bool> alive = alive_;
  client_->Request(options_.primary, std::move(req),
                   [this, alive, durable](net::ClientResult& result) {
                     auto a = alive.lock();
                     if (!a || !*a) return;
                     ack_in_flight_ = false;
                     if (result.error == net::ClientError::kNone && result.response.status == 200) {
                       counters_.acks_sent++;
                       acked_lsn_ = std::max(acked_lsn_, durable);
                       MaybeSendAck();  // more may have become durable meanwhile
                     } else {
                       // Retried with the next durable batch or heartbeat.
                       counters_.ack_errors++;
                     }
                   });
}

void ReplicationReplica::AppendJson(std::string* out) const {
  std::string& b = *out;
  b += "{";
  AppendJsonField(&b, "role", "replica");
  AppendJsonField(&b, "primary", options_.primary);
  b += std::string("\"connected\":") + (connected() ? "true" : "false") + ",";
  AppendJsonField(&b, "connected_for_ms", connected() ? uv_now(loop_) - connected_since_ms_ : 0);
  AppendJsonField(&b, "start_lsn", start_lsn_);
  AppendJsonField(&b, "applied_lsn", store_->durable_lsn());
  AppendJsonField(&b, "received_lsn", store_->last_lsn());
  AppendJsonField(&b, "primary_lsn", primary_lsn_);
  AppendJsonField(&b, "lag_records", lag_records());
  AppendJsonField(&b, "lag_ms", lag_ms());
  AppendJsonField(&b, "visible_lag_p50_us_le", visible_lag_.QuantileUpperBoundUs(0.5));
  AppendJsonField(&b, "visible_lag_p99_us_le", visible_lag_.QuantileUpperBoundUs(0.99));
  AppendJsonField(&b, "apply_lag_samples", apply_lag_.count());
  AppendJsonField(&b, "apply_lag_p50_us_le", apply_lag_.QuantileUpperBoundUs(0.5));
  AppendJsonField(&b, "apply_lag_p99_us_le", apply_lag_.QuantileUpperBoundUs(0.99));
  AppendJsonField(&b, "records_received", counters_.records_received);
  AppendJsonField(&b, "bytes_received", counters_.bytes_received);
  AppendJsonField(&b, "frames_received", counters_.frames_received);
  AppendJsonField(&b, "heartbeats_received", counters_.heartbeats_received);
  AppendJsonField(&b, "unsynced_bytes", unsynced_bytes_);
  AppendJsonField(&b, "connect_attempts", counters_.connect_attempts);
  AppendJsonField(&b, "connects", counters_.connects);
  AppendJsonField(&b, "reconnects", counters_.reconnects);
  AppendJsonField(&b, "refused", counters_.refused);
  AppendJsonField(&b, "stale_primary", counters_.stale_primary);
  AppendJsonField(&b, "stream_errors", counters_.stream_errors);
  AppendJsonField(&b, "backoff_ms", backoff_ms_);
  AppendJsonField(&b, "acked_lsn", acked_lsn_);
  AppendJsonField(&b, "acks_sent", counters_.acks_sent);
  AppendJsonField(&b, "ack_errors", counters_.ack_errors);
  AppendJsonField(&b, "crc_errors", counters_.crc_errors);
  AppendJsonField(&b, "protocol_errors", counters_.protocol_errors);
  AppendJsonField(&b, "commit_errors", counters_.commit_errors);
  AppendJsonField(&b, "throttles", counters_.throttles);
  AppendJsonField(&b, "last_error", last_error_, false);
  b += "}";
}

void ReplicationReplica::AppendPrometheus(std::string* out) const {
  AppendPromMetric(out, "distkv_replication_connected", "gauge",
                   "1 while this replica streams from its primary.", connected() ? 1 : 0);
  AppendPromMetric(out, "distkv_replication_applied_lsn", "gauge",
                   "Newest LSN applied and durable on this replica.", store_->durable_lsn());
  AppendPromMetric(out, "distkv_replication_primary_lsn", "gauge",
                   "The primary's durable LSN, as last reported to this replica.", primary_lsn_);
  AppendPromMetric(out, "distkv_replication_lag_records", "gauge",
                   "Records durable on the primary and not yet here.", lag_records());
  AppendPromMetric(out, "distkv_replication_lag_ms", "gauge",
                   "How long this replica has been missing its oldest missing record.", lag_ms());
  AppendPromMetric(out, "distkv_replication_records_received_total", "counter",
                   "Log records received from the primary.", counters_.records_received);
  AppendPromMetric(out, "distkv_replication_bytes_received_total", "counter",
                   "Stream bytes received from the primary.", counters_.bytes_received);
  AppendPromMetric(out, "distkv_replication_reconnects_total", "counter",
                   "Streams re-established after the first.", counters_.reconnects);
  AppendPromMetric(out, "distkv_replication_stream_errors_total", "counter",
                   "Streams that failed or ended (each is followed by a reconnect).",
                   counters_.stream_errors);
  AppendPromMetric(out, "distkv_replication_crc_errors_total", "counter",
                   "Records received with a bad CRC (the stream is restarted).",
                   counters_.crc_errors);
  AppendPromMetric(out, "distkv_replication_acks_sent_total", "counter",
                   "Acknowledgements the primary accepted.", counters_.acks_sent);
  AppendHistogram(out, "distkv_replication_visible_lag_seconds",
                  "Time from a record being durable on the primary to being readable here.",
                  visible_lag_);
  AppendHistogram(out, "distkv_replication_apply_lag_seconds",
                  "Time from a record being durable on the primary to being durable here.",
                  apply_lag_);
}

}  // namespace distkv
