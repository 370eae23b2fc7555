// The replication stream: how a primary's log tail travels to a replica.
//
// Connections. A replica opens ONE HTTP connection to its shard's primary:
//
//   GET /internal/replicate?from=<LSN>&history=<id>&replica=<host:port>&shard=<name>
//       [&snapshot=1]
//
// Version 2 adds `history`: the id (16 hex digits) of the history the
// replica's record at LSN `from` belongs to (the history lines of
// storage/manifest.h). The primary answers 409 history_diverged, with the
// last LSN both logs share in X-Distkv-Fork-Lsn, when the replica's data is
// not a prefix of its log; it names its current history in the
// X-Distkv-History header of a stream it accepts, which the replica's store
// adopts. Acks carry `history=<id>` too and count only for data of the
// primary's log.
//
// Epochs fence the stream (the cluster map's epoch, src/cluster/cluster_map.h):
// the replica adds `&epoch=<its map's epoch>`, and the primary names its own
// in the X-Distkv-Epoch header of the stream it accepts. A primary whose
// epoch is older than the replica's may have been deposed without knowing
// it yet: it refuses the stream (409 stale_epoch) and fetches the newer map
// from the replica; a replica that meets a primary with an older epoch
// (one that does not check) drops the stream before applying anything.
// Either side without an epoch (0, or a node that never sends one) is not
// fenced.
//
// `from` is the replica's last LSN (everything up to it is durable on the
// replica); `replica` is the address the replica listens on, which names it
// in the primary's /stats; `shard` must be the primary's shard. The answer is
// one long-lived `200` with `Transfer-Encoding: chunked` whose body is a
// sequence of frames (below); it ends only when either side goes away. The
// primary answers 410 when its log no longer holds the records after `from`
// (compacted away), 409 when the replica's data is not a prefix of its log,
// and 400 for a malformed request.
//
// Version 3 adds the full resync. A replica that sends `snapshot=1` takes a
// snapshot where the log cannot serve it: instead of the 410 or the 409 the
// primary answers 200 and the stream begins with a snapshot of its live
// data as of an LSN S (a snapshot-begin frame, records frames holding one
// put per live key, a snapshot-end frame), then goes on with the log after
// S like any stream. When the replica's history diverged, the 200 carries
// X-Distkv-Fork-Lsn too: the replica cuts its records after it into lost/
// before it takes the snapshot. The replica builds the snapshot beside its
// store and swaps it in at the end frame (storage/snapshot.h).
//
// A resume inside the compacted range (the replica's `from` at or above the
// primary's tombstone horizon, but below where its dense log starts) needs
// no snapshot and no new frame: the records frames carry the live records
// with LSN > from that the compacted segments hold, in LSN order, and where
// compaction left a hole in the LSNs the primary puts a gap record in front
// of the next record (its LSN that record's - 1, its previous LSN the last
// one sent, its history the primary's at that record). A replica applies
// it like any gap record: every record still follows the one before, so
// its check for a hole in the stream stays as strict as ever.
//
// Acknowledgements go the other way as ordinary requests over the replica's
// pooled keep-alive client:
//
//   POST /internal/replica-ack?replica=<host:port>&lsn=<LSN>&shard=<name>
//
// meaning "every record up to LSN is durable on this replica". The replica
// keeps at most one ack in flight and sends the newest durable LSN when it
// returns, so acks cost one small request per replica group commit at most.
// Keeping acks off the stream keeps the stream a plain HTTP response, which
// any proxy or debugging tool (curl) can read.
//
// Frames. Every integer is little-endian:
//
//   [u8 kind][u32 payload length][payload]
//
//   kind 1, records:   [u64 primary durable LSN][u64 stamp µs][records ...]
//       records: one or more whole log records, byte for byte as in the
//       primary's segment files (storage/record_format.h), so the replica
//       checks each record's own CRC-32C with storage::DecodeRecord.
//       stamp: the primary's wall clock (µs since the epoch) when the last
//       record of the frame became durable there; 0 when the primary does not
//       know (records older than its process). The replica measures its
//       apply lag against it, which assumes the two clocks agree (loopback,
//       NTP).
//   kind 2, heartbeat: [u64 primary durable LSN][u64 primary clock µs]
//       sent every heartbeat interval, so an idle replica still knows the
//       primary's position (its lag) and that the primary is alive.
//   kind 3, snapshot begin: [u64 primary durable LSN][u64 clock µs][u64 S]
//       [u64 history id of the record at S][u64 records][u64 bytes]
//       the records frames that follow, up to the snapshot-end frame, hold
//       the snapshot: `records` puts of `bytes` encoded bytes in all, each
//       the live record of one key, LSN <= S. Heartbeats may come between.
//   kind 4, snapshot end: [u64 primary durable LSN][u64 clock µs][u64 S]
//       the snapshot is complete; records frames after it are the log
//       after S.
//
// Frame boundaries are independent of HTTP chunk boundaries: the decoder
// takes the body bytes as they come, split anywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace distkv {

enum class FrameKind : uint8_t {
  kRecords = 1,
  kHeartbeat = 2,
  kSnapshotBegin = 3,
  kSnapshotEnd = 4
};

inline constexpr size_t kFrameHeaderBytes = 5;   // kind + length
inline constexpr size_t kFramePrefixBytes = 16;  // LSN + clock, in both kinds
inline constexpr std::string_view kReplicationContentType = "application/x-distkv-replication";
inline constexpr std::string_view kReplicationVersionHeader = "X-Distkv-Replication";
inline constexpr std::string_view kReplicationVersion = "3";
inline constexpr std::string_view kReplicationHistoryHeader = "X-Distkv-History";
// On a 409 history_diverged: the last LSN the replica's data shares with the
// primary's log.
inline constexpr std::string_view kReplicationForkHeader = "X-Distkv-Fork-Lsn";
// The primary's cluster-map epoch, on a stream it accepts and on 409 stale_epoch.
inline constexpr std::string_view kReplicationEpochHeader = "X-Distkv-Epoch";
// On a stream that begins with a snapshot: its LSN.
inline constexpr std::string_view kReplicationSnapshotHeader = "X-Distkv-Snapshot-Lsn";

// A history id as it travels: 16 lowercase hex digits.
std::string HistoryName(uint64_t id);
bool ParseHistoryName(std::string_view text, uint64_t* id);

// A decoded frame. records views the decoder's buffer: valid until the next
// Feed().
struct Frame {
  FrameKind kind = FrameKind::kHeartbeat;
  uint64_t primary_lsn = 0;  // the primary's durable LSN when it sent the frame
  uint64_t time_us = 0;      // records: stamp; heartbeat: the primary's clock
  std::string_view records;  // kRecords only: whole encoded records
  // kSnapshotBegin and kSnapshotEnd: the snapshot's LSN. kSnapshotBegin
  // also: the history of its record, and how many records and bytes follow.
  uint64_t snapshot_lsn = 0;
  uint64_t snapshot_history = 0;
  uint64_t snapshot_records = 0;
  uint64_t snapshot_bytes = 0;
};

// Building frames. A records frame is built in place so that a LogCursor can
// append the records straight after its prefix without another copy:
//
//   size_t start = BeginRecordsFrame(&buf);
//   cursor->Next(&buf, max_bytes);
//   FinishRecordsFrame(&buf, start, durable_lsn, stamp_us);
size_t BeginRecordsFrame(std::string* out);
// False (and the frame removed from *out) when no record was appended.
bool FinishRecordsFrame(std::string* out, size_t start, uint64_t primary_lsn, uint64_t stamp_us);
void AppendRecordsFrame(std::string* out, uint64_t primary_lsn, uint64_t stamp_us,
                        std::string_view records);
void AppendHeartbeatFrame(std::string* out, uint64_t primary_lsn, uint64_t now_us);
void AppendSnapshotBeginFrame(std::string* out, uint64_t primary_lsn, uint64_t now_us,
                              uint64_t snapshot_lsn, uint64_t history, uint64_t records,
                              uint64_t bytes);
void AppendSnapshotEndFrame(std::string* out, uint64_t primary_lsn, uint64_t now_us,
                            uint64_t snapshot_lsn);

// The clock of stamps and heartbeats: wall-clock µs since the epoch.
uint64_t StreamClockUs();

// Incremental decoder for the stream's body.
class FrameDecoder {
 public:
  enum class Result { kFrame, kNeedMore, kError };

  // A frame whose payload exceeds max_payload_bytes is an error: it bounds
  // the memory one stream can make the replica hold.
  explicit FrameDecoder(size_t max_payload_bytes) : max_payload_(max_payload_bytes) {}

  // Adds body bytes. Frames returned earlier are invalidated.
  void Feed(std::string_view bytes);
  // The next complete frame, kNeedMore when the buffer ends inside one, or
  // kError (then error() says why; the stream cannot be resynchronised).
  Result Next(Frame* frame);
  const std::string& error() const { return error_; }
  // Bytes received but not yet returned as frames.
  size_t buffered() const { return buf_.size() - pos_; }
  void Reset();

 private:
  size_t max_payload_;
  std::string buf_;
  size_t pos_ = 0;  // start of the first unreturned byte
  std::string error_;
};

}  // namespace distkv
