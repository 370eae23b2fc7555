// Store: one shard's log-structured key-value store (the Bitcask design).
//
// Every write is a record appended to the newest segment file of the store's
// directory; an in-memory hash index maps each live key to the place of its
// newest record, so a read is one index probe plus one pread of the value.
// The record format is described once, in storage/record_format.h.
//
// Threading. A Store belongs to one thread (the server's event-loop thread):
// every method is called there, and the index is touched only there. The one
// exception is WriteBatch::Run(), which performs the write(2) and fdatasync(2)
// of a batch and may run on any thread (the server uses libuv's thread pool),
// so the owning thread never blocks on the disk for a sync.
//
// Group commit. Put/Remove *stage* a record: it gets its LSN, its place in the
// log and its index entry at once (reads see it), but it is not on disk yet.
// The owner then drives batches:
//
//     std::unique_ptr<WriteBatch> b = store->TakeBatch();  // owner thread
//     Status s = b->Run();                                 // any thread
//     store->FinishBatch(std::move(b), s);                 // owner thread
//
// At most one batch is in flight; records staged meanwhile form the next one.
// FinishBatch returns what the batch's writers are to be told. OK: every LSN
// <= batch->last_lsn() is as durable as the fsync mode promises. When writing
// the batch fails (ENOSPC, EIO) FinishBatch undoes it and every record staged
// after it: the index goes back to what it was and the log is truncated to its
// last good byte; the store stays usable, and the undone LSNs are never used
// again (the next write follows a gap record, see record_format.h).
//
// A failed sync is different ("fsyncgate"): the kernel may have dropped the
// dirty pages and a later sync would succeed over lost data, so the store
// never retries. It stops accepting writes until it is reopened (writable()
// says why), undoes only the records staged after the batch, and returns an
// error for the batch's own records, which may or may not survive a restart —
// except under everysec, whose promise (written) they kept: OK for them.
// Either way every record whose LSN is above last_lsn() afterwards was undone.
//
// LSNs are never reused, across failures and restarts: the MANIFEST
// (storage/manifest.h) persists a high-water mark above every LSN handed out.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/status.h"

namespace distkv::storage {

class Io;
struct Record;

enum class FsyncMode {
  kAlways,    // every batch is written and fdatasync'ed before it completes
  kEverySec,  // batches are written; a sync happens at most once a second
  kNever,     // batches are written; syncing is left to the OS
};

// Parses "always" | "everysec" | "never".
bool ParseFsyncMode(std::string_view text, FsyncMode* mode);
std::string_view FsyncModeName(FsyncMode mode);

struct Options {
  std::string dir;  // created if missing
  // The seed of the key index's hash, which is also the order of a cursor
  // scan (Scan): stores that must agree on that order (the nodes of a
  // shard, a store and its next run) pass the same secret seed; without one
  // it is random, drawn once per process.
  std::optional<uint64_t> index_hash_seed;
  uint64_t segment_bytes = 64ull << 20;  // the active segment is sealed past this size
  FsyncMode fsync = FsyncMode::kAlways;
  // A corrupt record inside a sealed segment stops Open() with Corruption
  // naming the file and offset. With repair = true the segment is truncated
  // at that record instead (losing what followed it), and the loss is logged.
  bool repair = false;
  // Receives one line per noteworthy event (recovery, truncation). May be empty.
  std::function<void(std::string_view line)> log;
  // Recovery sizes the key index once, from the entry counts of the hint
  // files, before loading them (KeyIndex::Reserve), instead of growing it
  // one rebuild at a time as keys come. compaction-bench times both.
  bool size_index_from_hints = true;
  // The file system underneath; nullptr means Io::Posix(). Tests pass a
  // FaultyIo (storage/faulty_io.h). Not owned; must outlive the store.
  Io* io = nullptr;
  // Test hook for failure paths: WriteBatch::Run calls it before each step
  // ("create", "write", "sync") and fails that step with the errno it
  // returns, if non-zero; a compaction calls it before each of its steps
  // ("compact:reserve", "compact:write", "compact:sync", "compact:publish",
  // "compact:commit"; and, on the owner's thread, "compact:release" before
  // deleting each replaced segment, whose result is ignored) and the hint
  // writer before "hint:write". Called on the thread that runs the batch or
  // the job.
  std::function<int(std::string_view step)> fault_hook;
};

class RateLimiterClock;  // storage/rate_limiter.h

// What a compaction may drop (see storage/compaction.h), and its pace.
struct CompactionOptions {
  // Tombstones with an LSN above this are kept even where no older record
  // of their key remains: a replica that has only reached this LSN still
  // needs to see those deletes.
  uint64_t keep_tombstones_after = UINT64_MAX;
  // The merge's reads and writes, in bytes per second (storage/rate_limiter.h);
  // 0: as fast as the CPU and the disk go.
  uint64_t bytes_per_s = 0;
  RateLimiterClock* clock = nullptr;  // the pacing's clock (tests); nullptr: the real one
};

// Background work on the store's files: a compaction, or writing the hint
// files of sealed segments. Planned on the owner's thread by
// Store::TakeCompaction / TakeHintJob, executed by Run() on any thread, and
// adopted by Store::FinishJob on the owner's thread (the group-commit
// pattern). progress() may be read from any thread while Run() works.
class StoreJob {
 public:
  virtual ~StoreJob() = default;
  // Begin(), Main(), End(), up to the first failure.
  Status Run() {
    Status s = Begin();
    if (s.ok()) s = Main();
    if (s.ok()) s = End();
    return s;
  }
  // The parts of Run(), for a runner that gives the long one a low CPU
  // priority (they may run on different threads, one after the other).
  // Begin() and End() are short but may take a lock the owner's batches also
  // take (a compaction writes the MANIFEST there): run at a low priority, a
  // thread holding it could be kept off the CPU and stall the writes.
  // Main() reads and writes segment files only.
  virtual Status Begin() { return Status::OK(); }
  virtual Status Main() = 0;
  virtual Status End() { return Status::OK(); }
  virtual bool is_compaction() const = 0;
  virtual uint64_t input_bytes() const = 0;    // bytes the job reads in all
  virtual uint64_t progress() const = 0;       // bytes read so far
  virtual size_t input_segments() const = 0;   // segments the job reads
  virtual size_t output_segments() const = 0;  // segments it wrote (once Run returned)
};

// What Stats() reports; plain numbers for /stats and /metrics.
struct StoreStats {
  uint64_t keys = 0;
  uint64_t live_bytes = 0;  // bytes of records the index points at
  uint64_t dead_bytes = 0;  // bytes of overwritten/deleted records and tombstones
  uint64_t segments = 0;
  uint64_t last_lsn = 0;        // newest staged LSN
  uint64_t durable_lsn = 0;     // newest LSN whose batch completed
  uint64_t batches = 0;         // completed batches
  uint64_t batch_records = 0;   // records in completed batches (sum)
  uint64_t syncs = 0;           // fdatasync calls
  uint64_t index_bytes = 0;     // memory held by the key index (table + key arena)
  uint64_t failed_batches = 0;  // batches that failed and were rolled back
  uint64_t high_water_lsn = 0;  // persisted: no LSN at or below it is handed out again
  uint64_t history_id = 0;
  bool read_only = false;  // after a failed sync; writable() says why
  // Compaction.
  uint64_t sealed_bytes = 0;        // bytes of sealed segments (all but the active one)
  uint64_t sealed_dead_bytes = 0;   // ... not pointed at by the index
  uint64_t compactions = 0;         // completed compactions
  uint64_t compactions_failed = 0;  // compactions that failed (the store is unchanged)
  uint64_t bytes_reclaimed = 0;     // input bytes minus output bytes, summed
  uint64_t pinned_segments = 0;     // replaced segments kept for readers still using them
  uint64_t pinned_bytes = 0;        // ... their bytes, once the index no longer needs them
  uint64_t hint_files = 0;          // segments with a hint file
  uint64_t tombstone_horizon = 0;   // highest LSN of a dropped tombstone
  bool compacting = false;          // a compaction runs or repoints the index
  uint64_t keys_with_ttl = 0;       // keys that have an expiry
};

// A cursor scan (Store::Scan). Keys come in the order of their XXH3 hash;
// cursor is the hash to resume from, so a key present for the whole scan is
// returned exactly once, whatever writes, index growth or compaction happen
// between pages (see KeyIndex::Scan).
struct ScanOptions {
  uint64_t cursor = 0;  // 0 starts a scan
  size_t limit = 100;   // keys per page, at most
  std::string prefix;   // only keys that start with it
  bool values = false;  // read each key's value too
  // Only keys it accepts (when set): the owner's own filter, e.g. the keys
  // of the slots a shard owns. Keys it refuses still count as looked at.
  std::function<bool(std::string_view key)> keep;
  // Slots looked at per page: bounds the time a page takes when few keys
  // match the prefix (the page may then come back short, even empty).
  size_t max_slots = 65536;
};

struct ScanResult {
  struct Entry {
    std::string key;
    std::string value;  // with ScanOptions::values
    uint64_t lsn = 0;
  };
  std::vector<Entry> entries;
  uint64_t next = 0;  // cursor of the next page
  bool end = false;   // the scan is complete
};

class WriteBatch {
 public:
  virtual ~WriteBatch() = default;
  // Writes the batch's bytes (one write per segment touched) and syncs them if
  // the mode asks. Safe to call on a thread other than the owner's.
  virtual Status Run() = 0;
  virtual uint64_t first_lsn() const = 0;
  virtual uint64_t last_lsn() const = 0;
  virtual size_t records() const = 0;
  virtual size_t bytes() const = 0;
};

// Reads the log in LSN order, as encoded records (see record_format.h),
// from a starting LSN. Only records whose batch completed are returned.
class LogCursor {
 public:
  virtual ~LogCursor() = default;
  // Appends whole encoded records with LSN > the cursor's position to *out,
  // each LSN the previous one + 1 or a gap record continuing from it (a hole
  // in the log is Corruption naming the file and offset, never skipped),
  // reading about max_bytes of the log (records it skips to reach its
  // position count too; at least one record is read), and advances. It may
  // append nothing while it skips: position() below durable_lsn() then means
  // there is more, call again; at durable_lsn() the cursor is at the end of
  // what is durable now.
  virtual Status Next(std::string* out, size_t max_bytes) = 0;
  // LSN of the last record returned so far (the starting LSN before any).
  virtual uint64_t position() const = 0;
  // The cursor is inside a segment a compaction replaced: its pin keeps
  // every replaced segment on disk (StoreStats::pinned_bytes).
  virtual bool reads_replaced() const = 0;
};

// The live records of a store as of one LSN (storage/snapshot.h).
class SnapshotCursor {
 public:
  virtual ~SnapshotCursor() = default;
  // The snapshot's LSN: it holds the effect of every record up to it.
  virtual uint64_t lsn() const = 0;
  virtual uint64_t records() const = 0;       // how many it returns in all
  virtual uint64_t bytes() const = 0;         // their encoded bytes in all
  virtual uint64_t records_read() const = 0;  // returned so far
  // Appends whole encoded records (puts, CRC-checked, byte for byte as on
  // disk) to *out, about max_bytes of them (at least one); *done once all
  // are returned. OK with nothing appended: the records up to lsn() are not
  // durable yet, call again later. Busy if a failed batch undid some of them.
  virtual Status Next(std::string* out, size_t max_bytes, bool* done) = 0;
};

class Store {
 public:
  // Opens (creating if needed) the store in options.dir, takes the
  // directory's lock (Busy if another process or Store holds it), recovers
  // the index from the segments and truncates a torn tail of the newest one.
  static Status Open(const Options& options, std::unique_ptr<Store>* store);
  virtual ~Store() = default;

  // Value and LSN of the live record of key; NotFound if absent or deleted.
  // *expires_ms (if given) receives the key's expiry, 0 if it has none.
  virtual Status Get(std::string_view key, std::string* value, uint64_t* lsn = nullptr,
                     uint64_t* expires_ms = nullptr) = 0;
  // LSN of key's live record without reading the value (for conditional writes).
  virtual Status Lookup(std::string_view key, uint64_t* lsn) = 0;

  // Stage a put; *lsn receives its LSN. InvalidArgument for an empty key or
  // one longer than 64 KiB, or a value above 4 GiB - 1.
  // With expires_ms (Unix ms) the key expires then (see SetExpiryClock);
  // 0 means never, and a put without one removes an earlier expiry.
  virtual Status Put(std::string_view key, std::string_view value, uint64_t* lsn,
                     uint64_t expires_ms = 0) = 0;
  // Stage puts that survive a crash all or none (an atomic group, see
  // record_format.h); lsns[i] receives the LSN of pairs[i]. The records go to
  // one segment, the group's batch is one write. Limits as for Put.
  virtual Status PutAtomic(const std::vector<std::pair<std::string_view, std::string_view>>& pairs,
                           std::vector<uint64_t>* lsns) = 0;
  // Stage a tombstone; NotFound (and nothing staged) if the key is absent.
  virtual Status Remove(std::string_view key, uint64_t* lsn) = 0;

  // Replica side: stage a record received from the primary, keeping the
  // primary's LSN. InvalidArgument unless lsn > last_lsn(). A delete of an
  // absent key still stages its tombstone (the logs stay identical).
  virtual Status Apply(uint64_t lsn, bool is_delete, std::string_view key,
                       std::string_view value) = 0;
  // The same for any decoded record, gap records included. The record's LSN
  // must be last_lsn() + 1, or it must be a gap record whose previous LSN is
  // last_lsn(): a stream with a hole is refused (InvalidArgument). A gap
  // record's history id becomes this store's current history.
  virtual Status Apply(const Record& record) = 0;
  // The same for a record received encoded: encoded is the record's
  // encoding, as DecodeRecord() checked it (CRC included), and goes to the
  // log as is instead of being encoded (and its CRC computed) again.
  // InvalidArgument if its size is not the record's.
  virtual Status ApplyEncoded(const Record& record, std::string_view encoded) = 0;
  // A hint: starts loading what looking key up in the index will touch, so
  // that a caller about to apply many records can overlap the cache misses
  // of the next keys with the work on the current one. Changes nothing.
  virtual void PrefetchKey(std::string_view key) const = 0;

  // Group commit, as described at the top of this file.
  virtual bool HasStaged() const = 0;
  virtual bool BatchInFlight() const = 0;
  // The staged records as a batch, or nullptr if none are staged or a batch is
  // in flight. With force_sync (everysec's timer) a batch is returned even if
  // nothing is staged, as long as written data awaits a sync.
  virtual std::unique_ptr<WriteBatch> TakeBatch(bool force_sync = false) = 0;
  virtual Status FinishBatch(std::unique_ptr<WriteBatch> batch, Status status) = 0;
  // Convenience for tests and tools: runs batches on this thread until
  // nothing is staged.
  virtual Status Flush() = 0;

  // Calls fn for every live key with its value and LSN (reads each value).
  // Stops early and returns the error if a read fails. fn must not modify
  // the store.
  virtual Status ForEach(const std::function<void(std::string_view key, std::string_view value,
                                                  uint64_t lsn)>& fn) = 0;
  // Calls fn for every live key with its LSN without reading a value: a walk
  // of the in-memory index (for work that reads the values later, in slices).
  // fn must not modify the store.
  virtual void ForEachKey(
      const std::function<void(std::string_view key, uint64_t lsn)>& fn) const = 0;

  // One page of a cursor scan over the live keys (see ScanOptions).
  virtual Status Scan(const ScanOptions& options, ScanResult* result) = 0;

  // Expiry. The store keeps each key's expiry (from its record) but does not
  // own a clock: now_ms() says what time it is, and a key whose expiry is at
  // or before it reads as absent (Get, Lookup, Scan) although its record is
  // still there; it goes for good when its owner Removes it (a tombstone).
  // now_ms() returning 0 — or no clock, the default — expires nothing: a
  // replica leaves expiry to its primary, whose tombstones it receives.
  // ForEach sees every key, expired or not.
  virtual void SetExpiryClock(std::function<uint64_t()> now_ms) = 0;
  // Up to max keys that have expired by the clock, soonest first, for the
  // owner to Remove.
  virtual void ExpiredKeys(size_t max, std::vector<std::string>* keys) const = 0;
  // The key's expiry (Unix ms), 0 if it has none; expired or not.
  virtual uint64_t ExpiryOf(std::string_view key) const = 0;

  // A cursor over the durable log after after_lsn, in LSN order. Where a
  // compaction has run, the log holds only the live records of the compacted
  // range, so the cursor returns every record with LSN > after_lsn that is
  // still live (the Kafka rule: a reader resuming there ends with the same
  // data), each hole filled by a gap record of the cursor's own so that
  // every record still follows the one before (storage/log_cursor.cc).
  // NotFound if the log cannot give every effect after after_lsn:
  // a tombstone above it was dropped (after_lsn < tombstone_horizon()), or
  // the log starts later. Next() says NotFound too if a compaction moves the
  // horizon past the cursor while it reads. The cursor pins the segment it
  // will read from the moment it is made (the active one if nothing after
  // after_lsn is written yet): a compaction that replaces it keeps it until
  // the cursor moves on, so a cursor made now reads on after any compaction.
  // The cursor is used on the owner's thread and must not outlive the store.
  virtual Status NewLogCursor(uint64_t after_lsn, std::unique_ptr<LogCursor>* cursor) = 0;
  // A snapshot of the live records as of last_lsn() whose key filter
  // accepts (all of them without a filter); storage/snapshot.h. Used on the
  // owner's thread; must not outlive the store.
  virtual Status NewSnapshot(const std::function<bool(std::string_view key)>& filter,
                             std::unique_ptr<SnapshotCursor>* cursor) = 0;

  // Background jobs, driven like batches (the owner runs Run() off its
  // thread). At most one job exists at a time. TakeCompaction plans a merge
  // of every sealed segment into new segments holding only their live
  // records (nullptr if a job exists, no segment is sealed, or the index is
  // still being repointed after the previous one). TakeHintJob plans writing
  // the hint files of sealed segments that have none (nullptr if none, if a
  // job exists, or while the store is read-only: see writable()). After
  // FinishJob adopts a compaction, the index is repointed at the new
  // segments a slice at a time: call CompactionStep until it returns false;
  // reads are correct throughout.
  virtual std::unique_ptr<StoreJob> TakeCompaction(const CompactionOptions& options) = 0;
  virtual std::unique_ptr<StoreJob> TakeHintJob() = 0;
  virtual void FinishJob(std::unique_ptr<StoreJob> job, Status status) = 0;
  virtual bool CompactionStep(size_t max_entries) = 0;
  // Runs a compaction to the end on this thread (tests and tools).
  virtual Status Compact(const CompactionOptions& options = {}) = 0;

  // Highest LSN of a tombstone compaction dropped: a LogCursor can only
  // start at or after it.
  virtual uint64_t tombstone_horizon() const = 0;

  virtual uint64_t size() const = 0;         // live keys
  virtual uint64_t last_lsn() const = 0;     // newest staged LSN (0 for an empty store)
  virtual uint64_t durable_lsn() const = 0;  // newest LSN of a completed batch
  // The persisted LSN high-water mark (see storage/manifest.h).
  virtual uint64_t high_water_lsn() const = 0;
  // The id of the history the log is in now (random, 64 bits, never 0), and
  // the LSN it started at; a new one starts when the store is created, when
  // --repair cuts records and when a crash may have lost acknowledged records.
  virtual uint64_t history_id() const = 0;
  virtual uint64_t history_start_lsn() const = 0;
  // Replication histories (the history lines of storage/manifest.h). The id
  // of the history the record at lsn belongs to in this log.
  virtual uint64_t HistoryAt(uint64_t lsn) const = 0;
  // Whether a log that holds history id up to lsn is a prefix of this
  // store's durable log. If not, *fork_lsn receives the last LSN the two
  // share (0 when this log does not know the history).
  virtual bool SharesHistory(uint64_t id, uint64_t lsn, uint64_t* fork_lsn) const = 0;
  // Replica: the records after last_lsn() follow the primary's history id.
  // Persisted by the next batch (until then a restart resumes as before).
  virtual void AdoptHistory(uint64_t id) = 0;
  // A replica promoted to primary: a new history begins after last_lsn(),
  // so that a node holding other records after that LSN is recognised.
  virtual void BeginHistory() = 0;
  // OK while the store accepts writes; after a failed sync, the reason it
  // does not (until it is reopened).
  virtual Status writable() const = 0;
  virtual StoreStats Stats() const = 0;
  virtual const Options& options() const = 0;
};

}  // namespace distkv::storage
