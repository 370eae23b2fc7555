// The replica's side of replication; the mechanism is described in
// replication_replica.h, the wire format in replication_stream.h.
#include "src/replication/replica.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "net/uv_handle.h"
#include "src/api/kv_request.h"
#include "src/obs/log.h"
#include "storage/number.h"
#include "storage/record_format.h"

namespace distkv {

namespace {

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
  expect_snapshot_ = false;
  snap_.reset();
  error_body_.clear();
  abort_reason_.clear();
  throttled_ = false;
  counters_.connect_attempts++;

  net::ClientOptions co;
  co.connect_timeout_ms = options_.connect_timeout_ms;
  co.request_timeout_ms = options_.idle_timeout_ms;
  co.tls = options_.tls;
  conn_ = std::make_unique<net::ClientConnection>(loop_, host_, port_, co);

  // While an earlier snapshot still holds the staging directory no new one
  // could be staged: the stream is asked for without snapshot=1, so a
  // primary whose log serves this replica streams it as usual, and one that
  // would need a snapshot refuses at once (410, 409) rather than copying
  // its index for a snapshot this replica would refuse.
  const storage::Options& so = store_->options();
  staging_busy_ = options_.install_snapshot &&
                  storage::StagingInUse(so.io ? so.io : storage::Io::Posix(), so.dir);

  net::OutboundRequest req;
  req.method = "GET";
  req.target = "/internal/replicate?from=" + std::to_string(store_->last_lsn()) +
               "&history=" + HistoryName(store_->HistoryAt(store_->last_lsn())) +
               "&replica=" + PercentEncode(options_.self_address) +
               "&shard=" + PercentEncode(options_.shard) +
               (options_.install_snapshot && !staging_busy_ ? "&snapshot=1" : "");
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

bool ReplicationReplica::HeaderNumber(const net::HttpResponse& head, std::string_view name,
                                      const std::string** text, uint64_t* out) {
  *text = head.header(name);
  if (*text == nullptr || storage::ParseUint(**text, 10, out)) return true;
  counters_.protocol_errors++;
  abort_reason_ = "the primary's " + std::string(name) + " header \"" + (*text)->substr(0, 64) +
                  "\" is not a number";
  return false;
}

void ReplicationReplica::OnHead(const net::HttpResponse& head) {
  head_status_ = head.status;
  const uint64_t epoch = options_.epoch ? options_.epoch() : 0;
  // A number the primary sends that does not parse refuses the whole stream
  // (OnBody ends it at its first bytes): a fork LSN misread as 0 would cut
  // every record of this node.
  const std::string* theirs = nullptr;
  const std::string* fork = nullptr;
  uint64_t primary_epoch = 0;
  uint64_t fork_lsn = 0;
  if (!HeaderNumber(head, kReplicationEpochHeader, &theirs, &primary_epoch) ||
      !HeaderNumber(head, kReplicationForkHeader, &fork, &fork_lsn)) {
    return;
  }
  if (theirs != nullptr && options_.on_newer_epoch && primary_epoch > epoch) {
    options_.on_newer_epoch(primary_epoch);
  }
  if (head.status != 200) return;  // the error body follows; OnStreamEnd reports it
  // A primary behind this node's map may have been deposed: nothing of its
  // stream is applied (OnBody ends it at its first bytes).
  if (theirs != nullptr && primary_epoch < epoch) {
    counters_.stale_primary++;
    abort_reason_ = "the primary's cluster map (epoch " + *theirs +
                    ") is older than this node's (" + std::to_string(epoch) +
                    "): it may have been deposed; not following it";
    return;
  }
  // The records that follow belong to the primary's current history: the
  // store records it before applying any (after a snapshot, the new store).
  const std::string* h = head.header(kReplicationHistoryHeader);
  if (!h || !ParseHistoryName(*h, &head_history_)) head_history_ = 0;
  expect_snapshot_ = head.header(kReplicationSnapshotHeader) != nullptr;
  shares_history_ = fork == nullptr;  // else once the snapshot is installed
  if (fork != nullptr) {
    // This node's records after the fork are not the primary's: they are
    // kept aside before the snapshot replaces them.
    counters_.tails_cut++;
    Logf(LogLevel::kWarn,
         "replica of shard %s: its history diverged from primary %s after LSN %" PRIu64
         "; the records after it are cut and the data resynced",
         options_.shard.c_str(), options_.primary.c_str(), fork_lsn);
    if (options_.cut_tail) options_.cut_tail(fork_lsn);
  }
  if (!expect_snapshot_ && head_history_ != 0) store_->AdoptHistory(head_history_);
  state_ = State::kStreaming;
  counters_.connects++;
  if (counters_.connects > 1) counters_.reconnects++;
  // The backoff is not reset here: a primary that accepts the stream but whose
  // records this replica cannot take (full disk, bad record) would otherwise
  // be reconnected to, and the log re-sent, at the minimum delay forever.
  connected_since_ms_ = uv_now(loop_);
  stream_start_durable_ = store_->durable_lsn();
  stream_progressed_ = false;
  Logf(LogLevel::kInfo, "replica of shard %s: streaming from primary %s after LSN %" PRIu64 "%s",
       options_.shard.c_str(), options_.primary.c_str(), store_->last_lsn(),
       expect_snapshot_ ? ", beginning with a snapshot (full resync)" : "");
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
  if (installing_) {
    // The store is being swapped: the frames wait in the decoder.
    if (decoder_.buffered() > options_.max_unsynced_bytes) {
      abort_reason_ = "the stream ran more than " + std::to_string(options_.max_unsynced_bytes) +
                      " bytes ahead while the snapshot was installed";
      return false;
    }
    return true;
  }
  return TakeFrames();
}

bool ReplicationReplica::TakeFrames() {
  Frame frame;
  while (!installing_) {
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
      if (!snap_) MaybeSendAck();  // retries an ack that failed earlier
      continue;
    }
    if (snap_ || frame.kind == FrameKind::kSnapshotBegin || frame.kind == FrameKind::kSnapshotEnd) {
      if (!HandleSnapshotFrame(frame)) return false;
      continue;
    }
    if (expect_snapshot_) {
      counters_.protocol_errors++;
      abort_reason_ = "records before the announced snapshot";
      return false;
    }
    if (!HandleRecords(frame)) return false;
  }
  return true;
}

bool ReplicationReplica::HandleSnapshotFrame(const Frame& frame) {
  auto refuse = [&](std::string why) {
    counters_.protocol_errors++;
    abort_reason_ = std::move(why);
    return false;
  };
  NotePrimaryLsn(frame.primary_lsn);
  if (frame.kind == FrameKind::kSnapshotBegin) {
    if (!expect_snapshot_ || snap_) return refuse("a snapshot that was not announced");
    const storage::Options& so = store_->options();
    snap_lsn_ = frame.snapshot_lsn;
    snap_records_ = frame.snapshot_records;
    snap_bytes_ = frame.snapshot_bytes;
    snap_started_ms_ = uv_now(loop_);
    storage::Status s =
        storage::SnapshotWriter::Create(so.io ? so.io : storage::Io::Posix(), so.dir, snap_lsn_,
                                        frame.snapshot_history, so.segment_bytes, &snap_);
    if (!s.ok()) {
      // Busy: an earlier snapshot still holds the staging directory. This
      // one never began; it is refused, and asked for again after the
      // stream's back-off. Any other error is a snapshot that failed.
      snap_.reset();
      if (s.IsBusy()) {
        counters_.resyncs_refused_busy++;
      } else {
        counters_.resyncs_started++;
        NoteResyncFailed();
      }
      abort_reason_ = "cannot stage the snapshot: " + s.ToString();
      return false;
    }
    counters_.resyncs_started++;
    if (options_.progress) options_.progress->Update("resync", 0, snap_bytes_, "bytes");
    Logf(LogLevel::kInfo,
         "replica of shard %s: full resync from %s: receiving a snapshot of %" PRIu64
         " keys (%" PRIu64 " bytes) as of LSN %" PRIu64 " into %s",
         options_.shard.c_str(), options_.primary.c_str(), snap_records_, snap_bytes_, snap_lsn_,
         snap_->staging_dir().c_str());
    return true;
  }
  if (!snap_) return refuse("a snapshot frame outside a snapshot");
  if (frame.kind == FrameKind::kRecords) {
    counters_.frames_received++;
    const uint64_t before = snap_->bytes();
    storage::Status s = snap_->Add(frame.records);
    counters_.resync_bytes += snap_->bytes() - before;
    if (options_.progress)
      options_.progress->Update("resync", snap_->bytes(), snap_bytes_, "bytes");
    if (!s.ok()) {
      if (s.IsCorruption()) counters_.crc_errors++;
      abort_reason_ = "snapshot refused: " + s.ToString();
      return false;
    }
    return true;
  }
  // The end: everything announced must have come.
  if (frame.snapshot_lsn != snap_lsn_ || snap_->records() != snap_records_ ||
      snap_->bytes() != snap_bytes_) {
    return refuse("the snapshot ended at LSN " + std::to_string(frame.snapshot_lsn) + " with " +
                  std::to_string(snap_->records()) + " records (" + std::to_string(snap_->bytes()) +
                  " bytes); announced: LSN " + std::to_string(snap_lsn_) + ", " +
                  std::to_string(snap_records_) + " records (" + std::to_string(snap_bytes_) +
                  " bytes)");
  }
  // The frames after this one wait (installing_) while the staged files are
  // synced in the thread pool and then swapped in by the owner.
  installing_ = true;
  syncing_ = true;
  expect_snapshot_ = false;
  struct Job {
    uv_work_t req;
    std::unique_ptr<storage::SnapshotWriter> writer;
    storage::Status status;
    std::weak_ptr<bool> alive;
    ReplicationReplica* self;
  };
  auto* job = new Job{{}, std::move(snap_), storage::Status::OK(), alive_, this};
  job->req.data = job;
  uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<Job*>(req->data);
        j->status = j->writer->Finish();
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<Job> j(static_cast<Job*>(req->data));
        auto a = j->alive.lock();
        if (a && *a) {
          j->self->OnSnapshotStored(std::move(j->writer), j->status);
        } else {
          j->writer->Discard();  // its replica is gone: never to be installed
        }
      });
  return true;
}

void ReplicationReplica::OnSnapshotStored(std::unique_ptr<storage::SnapshotWriter> writer,
                                          const storage::Status& status) {
  syncing_ = false;
  if (state_ == State::kStopped) {
    // Re-pointed or stopping: the next open must not install it.
    writer->Discard();
    return;
  }
  if (!status.ok()) {
    installing_ = false;
    NoteResyncFailed();
    last_error_ = "the snapshot could not be stored: " + status.ToString();
    if (options_.progress) options_.progress->Finish("resync", "failed: " + last_error_);
    Logf(LogLevel::kError, "replica of shard %s: %s", options_.shard.c_str(), last_error_.c_str());
    if (ended_installing_) {
      ended_installing_ = false;
      ScheduleReconnect(backoff_ms_ + resync_backoff_ms_);
    } else {
      abort_reason_ = last_error_;
      conn_->Close();
    }
    return;
  }
  last_resync_ms_ = uv_now(loop_) - snap_started_ms_;
  last_resync_bytes_ = writer->bytes();
  last_resync_lsn_ = snap_lsn_;
  Logf(LogLevel::kInfo,
       "replica of shard %s: snapshot as of LSN %" PRIu64 " complete (%" PRIu64 " keys, %" PRIu64
       " bytes, %" PRIu64 " ms); swapping it in",
       options_.shard.c_str(), snap_lsn_, writer->records(), writer->bytes(), last_resync_ms_);
  writer.reset();
  std::weak_ptr<bool> alive = alive_;
  // The owner reopens the store; the frames after the snapshot wait until then.
  options_.install_snapshot(snap_lsn_,
                            [this, alive](storage::Store* store, CommitPipeline* pipeline) {
                              auto a = alive.lock();
                              if (a && *a && state_ != State::kStopped && store)
                                OnInstalled(store, pipeline);
                            });
}

void ReplicationReplica::OnInstalled(storage::Store* store, CommitPipeline* pipeline) {
  store_ = store;
  pipeline_ = pipeline;
  installing_ = false;
  counters_.resyncs_completed++;
  resync_backoff_ms_ = 0;
  backoff_ms_ = options_.min_backoff_ms;
  behind_.clear();
  unsynced_bytes_ = 0;
  acked_lsn_ = 0;  // acknowledges the snapshot's LSN in its history
  shares_history_ = true;
  if (head_history_ != 0) store_->AdoptHistory(head_history_);
  if (options_.progress) {
    options_.progress->Finish("resync", "snapshot as of LSN " + std::to_string(last_resync_lsn_) +
                                            " from " + options_.primary + ": " +
                                            std::to_string(store_->size()) + " keys, " +
                                            std::to_string(last_resync_bytes_) + " bytes");
  }
  Logf(LogLevel::kInfo,
       "replica of shard %s: the snapshot as of LSN %" PRIu64 " is the store now (%" PRIu64
       " keys); following the log after it",
       options_.shard.c_str(), store_->last_lsn(), store_->size());
  MaybeSendAck();
  if (ended_installing_) {
    ended_installing_ = false;
    ScheduleReconnect(0);
    return;
  }
  if (state_ == State::kStreaming && !TakeFrames()) conn_->Close();
}

// Records are decoded (and their CRC checked) a few ahead of the one being
// applied, and each decoded key's index slot is prefetched: with a key index
// far larger than the cache, applying a record is mostly waiting for that
// slot, and this way the waits of consecutive records overlap. A record is
// staged with the bytes that were checked (Store::ApplyEncoded), so its CRC
// is computed once here and not again for the local log.
bool ReplicationReplica::HandleRecords(const Frame& frame) {
  counters_.frames_received++;
  struct Decoded {
    storage::Record record;
    std::string_view encoded;
  };
  constexpr size_t kLookahead = 8;
  Decoded ring[kLookahead];
  size_t decoded = 0, applied = 0, applied_bytes = 0;
  std::string_view ahead = frame.records;
  storage::Status rejected;  // the first record that failed its checks, if any
  std::string failure;
  uint64_t last = 0;
  for (;;) {
    while (rejected.ok() && !ahead.empty() && decoded - applied < kLookahead) {
      Decoded& d = ring[decoded % kLookahead];
      size_t used = 0;
      rejected = storage::DecodeRecord(ahead, &d.record, &used);
      if (!rejected.ok()) break;
      d.encoded = ahead.substr(0, used);
      ahead.remove_prefix(used);
      if (!d.record.key.empty()) store_->PrefetchKey(d.record.key);
      decoded++;
    }
    if (applied == decoded) break;
    const Decoded& d = ring[applied % kLookahead];
    // Refuses a hole: the next LSN must be the last + 1.
    storage::Status s = store_->ApplyEncoded(d.record, d.encoded);
    if (!s.ok()) {
      counters_.protocol_errors++;
      failure = "cannot apply the record of LSN " + std::to_string(d.record.lsn) +
                " (local log ends at " + std::to_string(store_->last_lsn()) + "): " + s.ToString();
      break;
    }
    applied++;
    applied_bytes += d.encoded.size();
    counters_.records_received++;
    last = d.record.lsn;
  }
  if (failure.empty() && !rejected.ok()) {
    if (rejected.IsCorruption()) {
      counters_.crc_errors++;
    } else {
      counters_.protocol_errors++;
    }
    failure = "record after LSN " + std::to_string(store_->last_lsn()) +
              " rejected: " + rejected.ToString();
  }
  if (!failure.empty()) abort_reason_ = failure;
  NotePrimaryLsn(std::max(frame.primary_lsn, last));
  if (last != 0 && frame.time_us != 0) {
    const uint64_t now = StreamClockUs();
    visible_lag_.Observe(now > frame.time_us ? now - frame.time_us : 0);
  }
  if (last != 0) {
    // Records staged before a bad one are good: they are committed either way.
    const size_t bytes = applied_bytes;
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
    Logf(LogLevel::kError, "replica of shard %s: %s", options_.shard.c_str(), last_error_.c_str());
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
  if (installing_) {
    // The owner is swapping the store in: reconnect once it has.
    ended_installing_ = true;
    return;
  }
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
  const std::string& body = error_body_.empty() ? result.response.body : error_body_;
  if (staging_busy_ &&
      (head_status_ == 410 ||
       (head_status_ == 409 && body.find("history_diverged") != std::string::npos))) {
    // It needs a snapshot, and asks for one once the staging directory is free.
    counters_.resyncs_refused_busy++;
    reason += " (no snapshot was asked for: an earlier one still holds the staging directory)";
  }
  // A stream that made records durable, or lasted longer than the longest
  // backoff, was healthy: its end is a new failure, retried at the minimum.
  if (was_streaming &&
      (stream_progressed_ || uv_now(loop_) - connected_since_ms_ >= options_.max_backoff_ms)) {
    backoff_ms_ = options_.min_backoff_ms;
  }
  if (snap_) {
    // A snapshot cut short: the old store is untouched, the staging
    // directory is emptied by the next attempt. Not retried at once: a
    // snapshot that keeps failing must not keep the primary sending it.
    NoteResyncFailed();
    snap_.reset();
    if (options_.progress) options_.progress->Finish("resync", "failed: " + reason);
    reason = "the snapshot as of LSN " + std::to_string(snap_lsn_) + " ended unfinished: " + reason;
  }
  if (const storage::Status writable = store_->writable(); !writable.ok()) {
    // A failed sync: the store takes no more records until the node is
    // restarted (and a reconnect would wait forever for its last batch).
    last_error_ = reason + "; " + writable.ToString();
    Logf(LogLevel::kError,
         "replica of shard %s: %s; not reconnecting to %s until this node is restarted",
         options_.shard.c_str(), last_error_.c_str(), options_.primary.c_str());
    return;
  }
  uint64_t delay = backoff_ms_ + resync_backoff_ms_;
  if (throttled_) {
    delay = 0;  // not a failure: resume as soon as the pipeline has caught up
  } else {
    counters_.stream_errors++;
    backoff_ms_ = std::min(backoff_ms_ * 2, options_.max_backoff_ms);
  }
  last_error_ = reason;
  Logf(throttled_ ? LogLevel::kInfo : LogLevel::kWarn,
       "replica of shard %s: %s %s: %s; reconnecting in %" PRIu64 " ms", options_.shard.c_str(),
       was_streaming ? "stream from" : "cannot stream from", options_.primary.c_str(),
       reason.c_str(), delay);
  ScheduleReconnect(delay);
}

void ReplicationReplica::NoteResyncFailed() {
  counters_.resyncs_failed++;
  resync_backoff_ms_ = std::min(std::max(resync_backoff_ms_ * 2, options_.resync_backoff_ms),
                                options_.max_resync_backoff_ms);
}

void ReplicationReplica::ScheduleReconnect(uint64_t delay_ms) {
  if (state_ == State::kStopped || !timer_) return;
  uv_timer_start(timer_, OnTimer, delay_ms, 0);
}

void ReplicationReplica::OnTimer(uv_timer_t* timer) {
  auto* self = static_cast<ReplicationReplica*>(timer->data);
  if (self->state_ == State::kStopped) return;
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

}  // namespace distkv
