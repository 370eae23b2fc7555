// ReplicationReplica: the replica's side of replication — it follows the
// shard's primary by streaming its log tail into the local store.
//
// The replica keeps ONE connection of its own (net::ClientConnection) to the
// primary and asks for the log after its last LSN:
//
//   GET /internal/replicate?from=<last LSN>&replica=<own address>&shard=<name>
//
// The long-lived answer is a sequence of frames (src/replication/stream_format.h).
// Each record of a records frame is decoded with storage::DecodeRecord, which
// checks its CRC-32C, then staged with Store::ApplyEncoded under the
// primary's LSN, its checked bytes going to the local log as they came (the
// CRC is not computed again), so both logs hold the same records under the
// same LSNs. The node's own
// CommitPipeline makes them durable (group commit, as for a local write);
// once a frame's last LSN is durable the replica acknowledges the newest
// durable LSN to the primary (POST /internal/replica-ack over the node's
// pooled HttpClient, at most one in flight).
//
// Bounded memory. Records staged and not yet durable are counted; past
// max_unsynced_bytes (a disk slower than the network) the replica drops the
// stream, lets its pipeline catch up, and reconnects from its LSN — HTTP
// gives it no way to stop reading a response, and dropping the stream keeps
// the memory bound simple. Each frame is itself bounded by max_frame_bytes.
//
// Failures. Any error — refused connection, HTTP error, idle timeout (no byte,
// not even a heartbeat, for idle_timeout_ms; bytes that wait unread in the
// socket when the process wakes from a pause count: net/outbound_connection.h),
// a bad CRC, a frame that does not parse, an LSN that does not follow, a
// failed commit — ends the stream;
// the replica waits until everything it staged is durable (or undone), then
// reconnects after a backoff that doubles from min_backoff_ms to
// max_backoff_ms. It returns to the minimum only after a healthy stream: one
// that made records durable here or lasted max_backoff_ms; a stream that is
// accepted and then fails at once (a full disk, a record it cannot take)
// counts as one more failure.
// Because it always asks from its own last LSN, a restart of either side
// resumes where it left off.
//
// Full resync. The replica asks with snapshot=1: where the primary's log
// cannot serve it (its LSN was compacted away, or its history diverged) the
// stream begins with a snapshot (stream_format.h). If the head names a fork
// LSN, cut_tail saves the records after it first (the node writes them to
// lost/). The snapshot's records go into a SnapshotWriter in the store's
// staging directory (storage/snapshot.h) while the old store keeps serving
// reads; at the snapshot-end frame the writer is synced and marked complete
// in libuv's thread pool, the replica stops taking frames (they wait in the decoder's buffer,
// within max_unsynced_bytes) and install_snapshot has the owner reopen the
// store, which swaps the staged files in; with the new store the replica
// takes the buffered frames, the log after the snapshot's LSN, like any.
// A stream that ends inside the snapshot leaves the staging directory to the
// next attempt (or the next open) to empty: the old store is untouched.
// One snapshot is staged at a time: while an earlier writer (of a replica
// since re-pointed) holds staging/LOCK, the replica asks without
// snapshot=1 and a snapshot the primary sends anyway is refused; both count
// as resyncs_refused_busy, not as resyncs begun. Such
// a failure backs the next attempt off by resync_backoff_ms, doubling to
// max_resync_backoff_ms, so a snapshot that cannot complete is not retried
// in a tight loop; a completed one resets it.
//
// Lag. The primary's durable LSN arrives with every frame (and every
// heartbeat when idle): lag in records is that minus the local durable LSN;
// lag in ms is how long ago (local clock) the replica first learned of the
// oldest LSN it has not made durable yet. Two histograms, per frame, measure
// from the primary's clock stamp (so they assume synchronized clocks): the
// time from the primary making the records durable to the replica serving
// them to reads (visible lag: staged here, as reads see staged records), and
// to the replica making them durable too (apply lag: adds the local commit,
// an fdatasync under fsync = "always").
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "net/http_client.h"
#include "src/obs/metrics.h"
#include "src/obs/progress.h"
#include "src/replication/stream_format.h"
#include "src/shard/commit_pipeline.h"
#include "storage/snapshot.h"
#include "storage/store.h"

namespace distkv {

struct ReplicationReplicaOptions {
  std::string shard;                 // the shard replicated
  std::string primary;               // the primary's "host:port"
  std::string self_address;          // this node's listen address, which names it to the primary
  std::vector<net::Header> headers;  // sent with every request to the primary (credentials)
  std::shared_ptr<net::TlsContext> tls;  // HTTPS to the primary when set
  uint64_t connect_timeout_ms = 500;
  uint64_t idle_timeout_ms = 3'000;  // > the primary's heartbeat interval, several times over
  uint64_t ack_timeout_ms = 2'000;
  uint64_t min_backoff_ms = 100;
  uint64_t max_backoff_ms = 5'000;
  size_t max_frame_bytes = 64u << 20;
  size_t max_unsynced_bytes = 64u << 20;
  // Full resync (see above). cut_tail is called when the primary says this
  // node's records after fork_lsn are not its own, before the snapshot that
  // replaces them: the owner keeps them for the operator. install_snapshot
  // is called once a snapshot is complete in the staging directory: the
  // owner reopens the store (storage/snapshot.h installs it) and calls done
  // with the new store and pipeline, or with nulls if it could not. Without
  // install_snapshot the replica does not ask for snapshots.
  std::function<void(uint64_t fork_lsn)> cut_tail;
  using Installed = std::function<void(storage::Store*, CommitPipeline*)>;
  std::function<void(uint64_t snapshot_lsn, Installed done)> install_snapshot;
  uint64_t resync_backoff_ms = 1'000;
  uint64_t max_resync_backoff_ms = 30'000;
  // Where a resync's progress is shown ("resync", in bytes); may be null.
  ProgressBoard* progress = nullptr;
  // The epoch of the cluster map this node follows (null: 0, no fencing):
  // sent to the primary, and a stream from a primary with an older epoch is
  // dropped before anything of it is applied (stream_format.h).
  std::function<uint64_t()> epoch;
  // Called when the primary's answer names a newer epoch than epoch(): the
  // owner fetches that map from the primary at once rather than at its next
  // poll (the stream itself is followed as usual: a primary with a newer map
  // that still streams is still the primary).
  std::function<void(uint64_t primary_epoch)> on_newer_epoch;
};

class ReplicationReplica {
 public:
  // pipeline makes applied records durable; client carries the acks.
  ReplicationReplica(uv_loop_t* loop, storage::Store* store, CommitPipeline* pipeline,
                     net::HttpClient* client, ReplicationReplicaOptions options);
  ~ReplicationReplica();
  ReplicationReplica(const ReplicationReplica&) = delete;
  ReplicationReplica& operator=(const ReplicationReplica&) = delete;

  void Start();
  // Closes the stream and the timer; no more acks are sent.
  void Stop();
  // The "host:port" followed.
  const std::string& primary() const { return options_.primary; }

  // The "replication" object of /stats, and its /metrics lines.
  void WriteJson(JsonWriter* w) const;
  void WritePrometheus(PromWriter* prom) const;

  struct Counters {
    uint64_t connect_attempts = 0;
    uint64_t connects = 0;       // streams the primary accepted
    uint64_t reconnects = 0;     // ... after the first one
    uint64_t refused = 0;        // answered with an HTTP error (409, 410, 503, ...)
    uint64_t stream_errors = 0;  // streams that ended on an error
    uint64_t records_received = 0;
    uint64_t bytes_received = 0;  // stream body bytes
    uint64_t frames_received = 0;
    uint64_t heartbeats_received = 0;
    uint64_t crc_errors = 0;
    uint64_t protocol_errors = 0;  // bad frame, record cut short, LSN out of order
    uint64_t commit_errors = 0;
    uint64_t throttles = 0;  // streams dropped because the disk fell behind
    uint64_t acks_sent = 0;
    uint64_t ack_errors = 0;
    uint64_t stale_primary = 0;      // streams dropped: the primary's map epoch is older
    uint64_t resyncs_started = 0;    // snapshots begun (staged here)
    uint64_t resyncs_completed = 0;  // ... installed
    uint64_t resyncs_failed = 0;     // ... that ended before their end
    // Snapshots not begun here because an earlier one still held the
    // staging directory (staging/LOCK): not asked for (the primary answered
    // that one was needed), or sent and refused.
    uint64_t resyncs_refused_busy = 0;
    uint64_t resync_bytes = 0;  // snapshot record bytes received, all attempts
    uint64_t tails_cut = 0;     // fork LSNs handed to cut_tail
  };
  const Counters& counters() const { return counters_; }
  bool connected() const { return state_ == State::kStreaming; }
  // True once the primary has accepted this node's log as a prefix of its
  // own (a stream began without naming a fork), or once a snapshot of it
  // replaced a log that had diverged: until then the local data may hold
  // records the primary never had, and the owner serves no reads from it.
  bool shares_history() const { return shares_history_; }
  uint64_t primary_lsn() const { return primary_lsn_; }
  uint64_t lag_records() const;
  uint64_t lag_ms() const;
  uint64_t backoff_ms() const {
    return backoff_ms_;
  }  // the delay before the next attempt after a failure
  // Added to that delay after a snapshot that did not complete.
  uint64_t resync_backoff_ms() const { return resync_backoff_ms_; }

 private:
  enum class State { kIdle, kConnecting, kStreaming, kStopped };

  void Connect();
  void ScheduleReconnect(uint64_t delay_ms);
  void OnHead(const net::HttpResponse& head);
  // Reads the number header name of the primary's answer into *out (*text:
  // the header, null when absent); false, the stream refused as a protocol
  // error, when it is there but not a number.
  bool HeaderNumber(const net::HttpResponse& head, std::string_view name, const std::string** text,
                    uint64_t* out);
  bool OnBody(std::string_view chunk);
  // Takes the frames buffered in the decoder; false ends the stream.
  bool TakeFrames();
  bool HandleRecords(const Frame& frame);
  bool HandleSnapshotFrame(const Frame& frame);
  void OnSnapshotStored(std::unique_ptr<storage::SnapshotWriter> writer,
                        const storage::Status& status);
  void OnInstalled(storage::Store* store, CommitPipeline* pipeline);
  void OnStreamEnd(const net::ClientResult& result);
  // Counts a snapshot that ended unfinished and backs the next one off.
  void NoteResyncFailed();
  void OnCommitted(const storage::Status& status, uint64_t stamp_us, size_t bytes);
  void NotePrimaryLsn(uint64_t lsn);
  void MaybeSendAck();
  static void OnTimer(uv_timer_t* timer);

  uv_loop_t* loop_;
  storage::Store* store_;
  CommitPipeline* pipeline_;
  net::HttpClient* client_;
  ReplicationReplicaOptions options_;
  std::string host_;
  int port_ = 0;

  State state_ = State::kIdle;
  std::unique_ptr<net::ClientConnection> conn_;
  uint64_t stream_id_ = 0;  // callbacks of an older stream are ignored
  FrameDecoder decoder_;
  int head_status_ = 0;
  std::string error_body_;    // the start of a non-200 answer, for the log
  std::string abort_reason_;  // why OnBody ended the stream
  bool throttled_ = false;
  uint64_t backoff_ms_;
  uv_timer_t* timer_ = nullptr;  // reconnect backoff

  uint64_t primary_lsn_ = 0;
  // (primary LSN, loop ms when first seen) for LSNs not yet durable here.
  std::deque<std::pair<uint64_t, uint64_t>> behind_;
  size_t unsynced_bytes_ = 0;
  bool ack_in_flight_ = false;
  uint64_t acked_lsn_ = 0;  // newest LSN the primary accepted as our ack
  uint64_t connected_since_ms_ = 0;
  uint64_t stream_start_durable_ = 0;  // durable LSN when the current stream began
  bool stream_progressed_ = false;     // it made records durable since
  uint64_t start_lsn_ = 0;             // the local log's end when Start() ran
  bool shares_history_ = false;        // see shares_history()
  std::string last_error_;
  // Full resync.
  uint64_t head_history_ = 0;     // the primary's history, from the stream's head
  bool expect_snapshot_ = false;  // the head announced one
  bool staging_busy_ = false;     // the stream was asked without snapshot=1: staging/ was in use
  std::unique_ptr<storage::SnapshotWriter> snap_;  // the snapshot being received
  uint64_t snap_lsn_ = 0;
  uint64_t snap_records_ = 0;  // as announced
  uint64_t snap_bytes_ = 0;
  uint64_t snap_started_ms_ = 0;
  bool installing_ = false;         // the snapshot is synced, then swapped in; frames wait
  bool syncing_ = false;            // ... and it is still being synced
  bool ended_installing_ = false;   // ... and the stream ended meanwhile
  uint64_t resync_backoff_ms_ = 0;  // added to the next attempt after a failed snapshot
  uint64_t last_resync_ms_ = 0;
  uint64_t last_resync_bytes_ = 0;
  uint64_t last_resync_lsn_ = 0;
  FixedBucketHistogram visible_lag_;
  FixedBucketHistogram apply_lag_;
  std::shared_ptr<bool> alive_;
  Counters counters_;
};

}  // namespace distkv
