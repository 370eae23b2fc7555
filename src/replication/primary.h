// ReplicationPrimary: the primary's side of replication — it streams the log
// to every connected replica and keeps track of what each one holds.
//
// A replica's `GET /internal/replicate?from=N` becomes a session: a LogCursor
// over the store positioned after N, and a chunked response (Responder
// streaming) that carries frames (src/replication/stream_format.h). One pump moves a
// session forward: it reads at most slice_bytes of records from the cursor,
// frames them and writes them as one chunk. Nothing is ever buffered here
// beyond one slice: the records stay in the segment files until the
// connection can take them, so a replica far behind costs disk reads, not
// memory.
//
//   catch-up  the cursor still has durable records: one slice per loop turn
//             (a uv_idle handle), so the loop never works on replication for
//             more than one slice between two rounds of I/O;
//   blocked   more than low_water_bytes are queued on the connection: the
//             session waits, re-checked every millisecond, for the socket to
//             drain;
//   live      the cursor is at the durable end; the commit pipeline's durable
//             listener (OnDurable) pumps it as each batch completes.
//
// Every heartbeat_ms each session gets a heartbeat frame with the durable LSN
// and the clock. Memory per replica is bounded whatever the replica does:
// nothing is written while low_water_bytes are queued, so a connection holds
// at most that plus one frame. A stream whose queue passes max_queued_bytes
// anyway (a frame holding one huge record counts: the limit then is
// low_water_bytes plus that frame), or that stays blocked without draining a
// byte for stall_timeout_ms (a replica that stopped reading), is ended; the
// replica reconnects and resumes from its own LSN.
//
// Acks. `POST /internal/replica-ack?replica=ADDR&lsn=N` records that ADDR
// holds every record up to N durably (a session's `from` counts as an ack
// too). WaitForAcks lets a write wait for `needed` replicas to hold its LSN,
// or time out; the node answers 504 then, and the record stays written. The
// bookkeeping (acked LSNs, waiters, lag) is AckTracker's (ack_tracker.h).
//
// Replicas are known by the address sharding.toml gives them (the address
// they send as replica=); only the shard's configured replicas may stream or
// ack, anyone else gets 403, so the table of replicas is fixed. What is known
// of one (its acked LSN, counters) survives its reconnections, so /stats
// shows a disconnected replica and how far it got.
//
// Full resync. When the log no longer holds the records after a replica's
// LSN (compaction dropped them), or the replica's history diverged, and the
// replica asked with snapshot=1, its session starts with a snapshot
// (storage/snapshot.h) of the live data as of the newest LSN S: a
// snapshot-begin frame, the records a slice per pump exactly like the log
// (same pacing, same bounds), a snapshot-end frame; then a LogCursor from S
// takes over and the session goes on as any other. The tail is read from
// the log, never buffered here, so a tail that grows while the snapshot is
// sent never restarts it (the full-sync loop of Redis's output buffer). The
// LogCursor is made with the snapshot and pins the segment S + 1 goes to, so
// a compaction meanwhile keeps the segments it will read (storage/store.h),
// within keep_bytes (KeepBytes below).
//
// A replica resuming inside the compacted range (its LSN above the
// tombstone horizon) needs no snapshot: the LogCursor returns the live
// records after its LSN with gap records over the holes
// (storage/log_cursor.cc), which the replica applies like any stream.
// Without snapshot=1 the answers are 410 and 409.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/http_server.h"
#include "src/obs/events.h"
#include "src/obs/json_writer.h"
#include "src/obs/prometheus.h"
#include "src/replication/ack_tracker.h"
#include "storage/store.h"

namespace distkv {

struct ReplicationPrimaryOptions {
  std::string shard;                    // this node's shard; a replica must name the same
  std::vector<std::string> replicas;    // the shard's replicas: only they may stream and ack
  size_t slice_bytes = 256u << 10;      // records read from the log per pump
  size_t low_water_bytes = 4u << 20;    // stop pumping while more is queued on the socket
  size_t max_queued_bytes = 16u << 20;  // end the stream beyond this
  uint64_t heartbeat_ms = 500;
  uint64_t stall_timeout_ms = 10'000;  // blocked this long without draining: end the stream
  // Bytes of segments a compaction replaced that may stay on disk because a
  // stream still reads them; past it such streams end (KeepBytes below).
  uint64_t keep_bytes = 1ull << 30;
  size_t max_batch_times = 65536;  // batch completion times kept for lag in ms
  // Where replicas connecting and leaving are recorded for the cluster page
  // (null: the log only).
  EventLog* events = nullptr;
  // The epoch of the cluster map this node follows (null: 0, no fencing),
  // and what to do when a replica shows a newer one: this node may have
  // been deposed, so the owner fetches that map (from the replica at
  // `replica`). The stream is refused either way (stream_format.h).
  std::function<uint64_t()> epoch;
  std::function<void(const std::string& replica, uint64_t epoch)> on_newer_epoch;
};

class ReplicationPrimary {
 public:
  using AckDone = AckTracker::Done;

  ReplicationPrimary(uv_loop_t* loop, storage::Store* store, ReplicationPrimaryOptions options);
  ~ReplicationPrimary();
  ReplicationPrimary(const ReplicationPrimary&) = delete;
  ReplicationPrimary& operator=(const ReplicationPrimary&) = delete;

  // GET /internal/replicate: answers an error, or starts a stream.
  void HandleReplicate(const net::HttpRequest& request, net::Responder responder);
  // POST /internal/replica-ack.
  net::HttpResponse HandleAck(const net::HttpRequest& request);
  // The commit pipeline's durable listener.
  void OnDurable(uint64_t durable_lsn);
  // Calls done(true) once `needed` replicas hold every LSN <= lsn, or
  // done(false) after timeout_ms. Never calls done before returning.
  void WaitForAcks(uint64_t lsn, int needed, uint64_t timeout_ms, AckDone done);
  // Ends every stream, answers every waiter with false and closes the
  // handles. Further requests get 503.
  void Stop();

  // The "replication" object of /stats, and its /metrics lines.
  void WriteJson(JsonWriter* w) const;
  void WritePrometheus(PromWriter* prom) const;

  struct Counters {
    uint64_t streams_started = 0;
    uint64_t streams_refused = 0;       // 4xx/5xx answers to /internal/replicate
    uint64_t streams_gone = 0;          // 410: the log no longer holds what a replica needs
    uint64_t streams_diverged = 0;      // the replica's history is not a prefix of ours
    uint64_t streams_fenced = 0;        // 409: the replica's map epoch is newer than ours
    uint64_t resyncs_started = 0;       // sessions that began with a snapshot
    uint64_t resyncs_sent = 0;          // ... whose snapshot was sent to its end
    uint64_t resyncs_failed = 0;        // ... whose stream ended before that
    uint64_t snapshot_bytes_sent = 0;   // encoded records of snapshots sent
    uint64_t overflow_disconnects = 0;  // ended for passing max_queued_bytes
    uint64_t stall_disconnects = 0;     // ended for not draining within stall_timeout_ms
    uint64_t keep_disconnects = 0;      // ended for holding replaced segments past keep_bytes
    uint64_t records_sent = 0;
    uint64_t bytes_sent = 0;
    uint64_t frames_sent = 0;
    uint64_t heartbeats_sent = 0;
    uint64_t unknown_replicas = 0;  // 403 answers: a name not configured for this shard
  };
  const Counters& counters() const { return counters_; }
  const AckTracker& acks() const { return acks_; }
  size_t connected_replicas() const;
  // Highest LSN acknowledged by the replica at address (0 if unknown).
  uint64_t acked_lsn(const std::string& address) const;
  // The LSN above which compaction must keep tombstones: the lowest LSN a
  // known replica (connected or not) has acknowledged, ignoring replicas
  // more than max_behind records behind (they will get a snapshot).
  // UINT64_MAX when no replica needs any. A snapshot being sent counts
  // whatever the bound: the log after its LSN follows it.
  uint64_t KeepTombstonesAfter(uint64_t max_behind) const;
  // Bounds what replaced segments stay on disk for streams: when more than
  // keep_bytes of them wait for readers, each stream reading one ends (its
  // replica resumes from what the log holds then: the compacted range, or a
  // snapshot), and a stream sending a snapshot lets go of the log cursor it
  // holds for the tail, making it again from the snapshot's LSN at the end
  // (the tombstones after that LSN are kept, so that works). The heartbeat
  // timer calls it.
  void KeepBytes();

 private:
  enum class Phase { kCatchUp, kBlocked, kLive };

  struct Session {
    uint64_t id = 0;
    std::string address;
    net::Responder responder;
    std::unique_ptr<storage::LogCursor> cursor;         // after the snapshot, if one
    std::unique_ptr<storage::SnapshotCursor> snapshot;  // full resync: until it is sent
    uint64_t snapshot_lsn = 0;                          // its LSN (0: no snapshot)
    uint64_t snapshot_started_ns = 0;
    uint64_t snapshot_bytes_sent = 0;
    Phase phase = Phase::kCatchUp;
    bool closed = false;
    uint64_t connected_ns = 0;
    size_t queue_limit = 0;         // max_queued_bytes, or low water + the largest frame sent
    size_t blocked_queued = 0;      // smallest queue seen while blocked
    uint64_t blocked_since_ms = 0;  // loop time the queue last shrank while blocked
    std::string frame;              // reused buffer for one frame
  };

  // What is known of one replica, connected or not (its acked LSN: acks_).
  struct Replica {
    std::shared_ptr<Session> session;  // null while disconnected
    uint64_t sent_lsn = 0;
    uint64_t records_sent = 0;
    uint64_t bytes_sent = 0;
    uint64_t connects = 0;
    uint64_t last_seen_ns = 0;
    uint64_t resyncs = 0;  // snapshots begun for it
    uint64_t last_resync_ms = 0;
    uint64_t last_resync_bytes = 0;
  };

  void StartSession(const std::string& address, uint64_t from, std::optional<uint64_t> fork,
                    net::Responder responder, std::unique_ptr<storage::LogCursor> cursor,
                    std::unique_ptr<storage::SnapshotCursor> snapshot);
  void Pump(const std::shared_ptr<Session>& session);
  void PumpSnapshot(const std::shared_ptr<Session>& session);
  // Writes session->frame, holding `records` records, and counts it.
  void Send(const std::shared_ptr<Session>& session, uint64_t records);
  // Records a replica's coming or going: an event when options_.events is set, else a log line.
  void Note(std::string message);
  void EndSession(std::shared_ptr<Session> session,
                  const char* why);  // by value: it may drop the last owner
  void OnSessionClosed(const std::string& address, uint64_t id);
  void UpdateScheduling();
  void SendHeartbeats();
  // 403 unless name is one of the shard's configured replicas.
  bool RefuseUnknown(const std::string& name, net::HttpResponse* error);
  uint64_t LagMs(const std::string& address, uint64_t now_us) const;

  static void OnIdle(uv_idle_t* handle);
  static void OnDrainTimer(uv_timer_t* handle);
  static void OnHeartbeatTimer(uv_timer_t* handle);

  uv_loop_t* loop_;
  storage::Store* store_;
  ReplicationPrimaryOptions options_;
  std::map<std::string, Replica> replicas_;  // the configured ones, by address
  AckTracker acks_;
  uv_idle_t* idle_ = nullptr;          // pumps sessions in catch-up
  uv_timer_t* drain_timer_ = nullptr;  // re-checks blocked sessions
  uv_timer_t* heartbeat_timer_ = nullptr;
  uint64_t next_session_id_ = 1;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_;
  Counters counters_;
};

}  // namespace distkv
