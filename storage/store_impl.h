// StoreImpl: the Store of store.h. Its parts:
//
//   segments_  the segment files, oldest first; back() is the active one.
//              Each knows how many of its bytes are on file from completed
//              batches (`written`) and how many more are staged or in flight
//              (`end`), and whether its written bytes are synced.
//   index_     key -> newest record (KeyIndex).
//   staged_    records staged since the last TakeBatch(): their encoded bytes,
//              one chunk per segment they fall in, and one undo entry each
//              (the index entry they displaced).
//   inflight_  the same for the batch being run. Its bytes are shared,
//              read-only, with the WriteBatch; Get() reads records that are
//              not on file yet from here or from staged_.
//   manifest_  the MANIFEST as last written. A batch carries a new one when
//              it creates a segment, when the LSN reservation runs low or
//              when the history changed; it is written after the batch's data.
//
// FinishBatch() either makes a batch's bytes part of the files (OK) or undoes
// staged_ and inflight_ newest first, truncates the files to their `written`
// size and forgets segments no completed batch created. LSNs it undid are
// burned: lsn_floor_ rises past them and the next Put stages a gap record.
//
// Segment ids come from one counter (next_segment_id_) shared by the writer
// and compaction, so the active segment (active_id_) is not always the
// highest id: a compaction's outputs take ids above it. segments_ is sorted
// by id; compacted segments are flagged, and the MANIFEST lists them for
// recovery. Compaction itself is in compaction.cc.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "storage/expiry_table.h"
#include "storage/hint_loader.h"
#include "storage/io.h"
#include "storage/key_index.h"
#include "storage/manifest.h"
#include "storage/record_format.h"
#include "storage/store.h"

namespace distkv::storage {

struct BatchFile;

// The bytes on disk of the record an index entry points at.
inline uint64_t RecordBytes(std::string_view key, const IndexEntry& e) {
  return EncodedRecordSize(key.size(), e.value_len);
}

struct Segment {
  uint32_t id = 0;
  std::string path;
  int fd = -1;             // -1 until the batch that creates the file completes
  uint64_t written = 0;    // bytes on file, from completed batches
  uint64_t end = 0;        // written + staged and in-flight bytes
  uint64_t allocated = 0;  // the file's size: written, then zero bytes written ahead
  bool synced = true;      // every written byte has been fdatasync'ed
  uint64_t first_lsn = 0;  // of the records within `written` (0: none)
  uint64_t last_lsn = 0;
  uint64_t live = 0;       // bytes of the records the index points at
  bool compacted = false;  // listed as compacted in the MANIFEST: sorted by LSN, sparse
  bool obsolete = false;   // replaced by a compaction; deleted once released
  bool hinted = false;     // has a valid hint file

  // A sealed segment a background job may read: its file holds exactly its
  // records, all synced, and no batch uses it any more (the one that sealed
  // it also trims its pre-allocated space through its descriptor).
  bool Settled() const {
    return !obsolete && fd >= 0 && written == end && synced && allocated == written;
  }
};

class CompactionJobImpl;

class StoreImpl final : public Store {
 public:
  // LSNs reserved ahead in the MANIFEST; renewed when half is used.
  static constexpr uint64_t kLsnReservation = 1 << 20;
  // How far ahead of the writer the active segment is zero-filled when
  // fsync = "always" (record_format.h, Writes): one extension, its journal
  // commit included, every this many bytes written.
  static constexpr uint64_t kPreallocateBytes = 1 << 20;

  explicit StoreImpl(const Options& options);
  ~StoreImpl() override;

  // Lock, scan, recover. Called once by Store::Open.
  Status Init();

  Status Get(std::string_view key, std::string* value, uint64_t* lsn,
             uint64_t* expires_ms) override;
  Status Lookup(std::string_view key, uint64_t* lsn) override;
  Status Put(std::string_view key, std::string_view value, uint64_t* lsn,
             uint64_t expires_ms) override;
  Status Remove(std::string_view key, uint64_t* lsn) override;
  Status PutAtomic(const std::vector<std::pair<std::string_view, std::string_view>>& pairs,
                   std::vector<uint64_t>* lsns) override;
  Status Apply(uint64_t lsn, bool is_delete, std::string_view key, std::string_view value) override;
  Status Apply(const Record& record) override;
  Status ApplyEncoded(const Record& record, std::string_view encoded) override;
  void PrefetchKey(std::string_view key) const override { index_.Prefetch(key); }
  bool HasStaged() const override { return !staged_.undo.empty(); }
  bool BatchInFlight() const override { return in_flight_; }
  std::unique_ptr<WriteBatch> TakeBatch(bool force_sync) override;
  Status FinishBatch(std::unique_ptr<WriteBatch> batch, Status status) override;
  Status Flush() override;
  Status ForEach(
      const std::function<void(std::string_view, std::string_view, uint64_t)>& fn) override;
  Status Scan(const ScanOptions& options, ScanResult* result) override;
  void SetExpiryClock(std::function<uint64_t()> now_ms) override { clock_ = std::move(now_ms); }
  void ExpiredKeys(size_t max, std::vector<std::string>* keys) const override;
  uint64_t ExpiryOf(std::string_view key) const override { return expiry_.Get(key); }
  void ForEachKey(const std::function<void(std::string_view key, uint64_t lsn)>& fn) const override;
  Status NewLogCursor(uint64_t after_lsn, std::unique_ptr<LogCursor>* cursor) override;
  Status NewSnapshot(const std::function<bool(std::string_view key)>& filter,
                     std::unique_ptr<SnapshotCursor>* cursor) override;
  uint64_t size() const override { return index_.size(); }
  uint64_t last_lsn() const override { return last_lsn_; }
  uint64_t durable_lsn() const override { return durable_lsn_; }
  uint64_t high_water_lsn() const override { return persisted_hw_; }
  uint64_t history_id() const override { return manifest_.history().id; }
  uint64_t history_start_lsn() const override { return manifest_.history().start_lsn; }
  uint64_t HistoryAt(uint64_t lsn) const override;
  bool SharesHistory(uint64_t id, uint64_t lsn, uint64_t* fork_lsn) const override;
  void AdoptHistory(uint64_t id) override;
  void BeginHistory() override;
  Status writable() const override { return read_only_; }
  StoreStats Stats() const override;
  const Options& options() const override { return options_; }
  std::unique_ptr<StoreJob> TakeCompaction(const CompactionOptions& options) override;
  std::unique_ptr<StoreJob> TakeHintJob() override;
  void FinishJob(std::unique_ptr<StoreJob> job, Status status) override;
  bool CompactionStep(size_t max_entries) override;
  Status Compact(const CompactionOptions& options) override;
  uint64_t tombstone_horizon() const override { return manifest_.tombstone_horizon; }

  // For LogCursor (same thread).
  Io* io() const { return io_; }
  const std::vector<Segment>& segments() const { return segments_; }
  const Segment* FindSegment(uint32_t id) const;
  const Manifest& manifest() const { return manifest_; }
  uint64_t failed_batch_count() const { return failed_batches_; }
  uint32_t active_id() const { return active_id_; }
  // A reader (a LogCursor) uses segment id: a compaction that replaced it
  // deletes it only once no reader pins it.
  void Pin(uint32_t id) const { pins_[id]++; }
  void Unpin(uint32_t id) const;

 private:
  struct Chunk {
    uint32_t segment;
    uint64_t offset;  // in the segment, of bytes->front()
    std::shared_ptr<std::string> bytes;
    uint64_t first_lsn;
    uint64_t last_lsn;
  };
  struct Undo {
    bool had_old;
    IndexEntry old;            // the entry the record displaced, if had_old
    uint64_t old_expires = 0;  // the key's expiry before the record
  };
  // Records staged and not yet durable (staged_, or inflight_ while its batch
  // is written and synced): where their bytes are, and how to undo them in
  // the index if the batch fails.
  struct UnsyncedBatch {
    std::vector<Chunk> chunks;
    std::vector<Undo> undo;   // one per record, in log order
    uint64_t lsn_before = 0;  // last_lsn_ before the first record
    bool empty() const { return undo.empty(); }
  };
  // What recovery learned while scanning, for the checks that follow it.
  struct ScanState {
    uint64_t log_start = 0;  // from the MANIFEST (0: the first record found)
    uint64_t prev_lsn = 0;   // last LSN of the dense log so far (0: none yet)
    uint64_t max_lsn = 0;
    std::vector<LsnGap> gaps;      // declared absent (MANIFEST and new ones)
    std::vector<LsnGap> new_gaps;  // --repair: found missing now
    bool repaired = false;         // --repair cut or accepted something
    uint64_t first_cut_prev = 0;   // --repair: the last LSN before the first loss

    // A record (or gap) of LSN lsn was found in seg: widens the segment's
    // LSN range and the log's high-water mark.
    void Saw(Segment* seg, uint64_t lsn) {
      if (seg->first_lsn == 0 || lsn < seg->first_lsn) seg->first_lsn = lsn;
      seg->last_lsn = std::max(seg->last_lsn, lsn);
      max_lsn = std::max(max_lsn, lsn);
    }
  };

  Segment* FindSegment(uint32_t id);
  Segment* Active() { return FindSegment(active_id_); }
  Status Recover();
  // Recovers a segment of file_size bytes: from its hint file if hint (read
  // by the HintLoader; null when there is none) can be trusted, else by
  // scanning it.
  Status ScanSegment(Segment* seg, uint64_t file_size, bool newest, const HintLoader::Loaded* hint,
                     ScanState* st);
  // Recovery from a segment's hint file; NotFound/Corruption: scan instead.
  Status LoadHints(Segment* seg, const HintLoader::Loaded& hint, ScanState* st);
  void RecoverRecord(Segment* seg, std::string_view key, uint64_t hash, const IndexEntry& e,
                     uint64_t expires_ms, ScanState* st);
  // Index maintenance shared by staging, rollback and recovery: moves the
  // live-byte count of a key's record from one segment to another.
  void AddLive(uint32_t segment, uint64_t bytes);
  void SubLive(uint32_t segment, uint64_t bytes);
  // Where a record that sat in a segment replaced by the running compaction
  // now is (rollback restores index entries older than the compaction).
  IndexEntry Relocate(std::string_view key, const IndexEntry& e) const;
  // Closes and deletes replaced segments no reader needs any more.
  void ReleaseObsolete();
  uint64_t OldestPendingLsn() const;
  Status CheckDense(const Segment& seg, uint64_t offset, const Record& rec, ScanState* st);
  Status CutSegment(Segment* seg, uint64_t at, uint64_t file_size, const std::string& why);
  Status CreateFirstSegment();
  Status CheckWritable() const;
  // group_bytes: the encoded size of the whole atomic group this record starts
  // (0 when it is not a group's first record): the segment is sealed first
  // unless the whole group fits. encoded, if not empty, is the record's
  // checked encoding (ApplyEncoded), appended instead of encoding it again.
  Status Stage(uint64_t lsn, RecordType type, std::string_view key, std::string_view value,
               bool group_continues = false, uint64_t group_bytes = 0, uint64_t expires_ms = 0,
               std::string_view encoded = {});
  // True if key has an expiry the clock says has come.
  bool Expired(std::string_view key) const;
  Status StageGapIfNeeded();
  // Undoes the index changes of p's records from the keep-th on.
  void Rollback(UnsyncedBatch* p, size_t keep);
  static size_t CountRecords(const Chunk& c);
  // Makes what a batch did to one file part of the segment.
  void AdoptFile(const BatchFile& f);
  void ForgetUncreatedSegments();
  static void MarkWrite(std::string* bytes);
  void RecountTotal();  // ends back to written, total_bytes_ from them
  Status ReadValue(std::string_view key, const IndexEntry& e, std::string* value,
                   uint64_t* expires_ms = nullptr) const;
  void Log(const std::string& line) const;
  void CloseCleanly();

  const Options options_;
  Io* io_;
  int lock_fd_ = -1;
  int dir_fd_ = -1;
  bool opened_ = false;  // Init() succeeded
  std::vector<Segment> segments_;
  KeyIndex index_;
  ExpiryTable expiry_;               // the keys that have an expiry
  std::function<uint64_t()> clock_;  // SetExpiryClock
  UnsyncedBatch staged_;
  UnsyncedBatch inflight_;
  bool in_flight_ = false;
  bool staged_group_open_ = false;  // the last staged record continues an atomic group
  // Set after a failed sync, or when a rollback could not restore the files:
  // writes then fail with it until the store is reopened.
  Status read_only_;

  Manifest manifest_;
  std::unique_ptr<ManifestWriter> manifest_writer_;
  // LSNs up to lsn_floor_ may have been handed out (burned by a failed batch
  // or a crash): the next Put stages a gap record past them. need_gap_ also
  // asks for one when a new history started.
  uint64_t lsn_floor_ = 0;
  bool need_gap_ = false;
  // manifest_ is the current MANIFEST; it is on disk when persisted_gen_ ==
  // manifest_gen_ (Apply of a gap record changes the history in memory, and
  // the next batch writes it). persisted_hw_ is the high-water mark on disk:
  // Put never hands out an LSN above it.
  uint64_t manifest_gen_ = 0;
  uint64_t persisted_gen_ = 0;
  uint64_t persisted_hw_ = 0;

  uint64_t last_lsn_ = 0;
  uint64_t durable_lsn_ = 0;
  uint64_t total_bytes_ = 0;  // sum of segment ends
  uint64_t live_bytes_ = 0;   // encoded size of the records the index points at
  uint64_t tombstones_ = 0;   // during recovery: tombstone entries in the index
  std::chrono::steady_clock::time_point last_sync_;

  uint32_t active_id_ = 0;
  uint64_t next_segment_id_ = 1;
  bool job_running_ = false;
  bool compaction_job_ = false;  // the running job is a compaction
  // The last compaction, kept from FinishJob until its inputs are released:
  // it knows where each record it moved went.
  std::unique_ptr<CompactionJobImpl> swap_;
  size_t swap_pos_ = 0;         // next moved record CompactionStep repoints
  uint64_t swap_done_lsn_ = 0;  // last_lsn_ when repointing ended
  mutable std::map<uint32_t, int> pins_;
  uint64_t compactions_ = 0;
  uint64_t compactions_failed_ = 0;
  // After a failed hint job, TakeHintJob plans none for hint_skip_ calls
  // (storage/compaction.h, kMaxHintSkip).
  uint64_t hint_skip_ = 0;
  uint64_t hint_backoff_next_ = 1;
  uint64_t bytes_reclaimed_ = 0;

  uint64_t batches_ = 0;
  uint64_t batch_records_ = 0;
  uint64_t syncs_ = 0;
  uint64_t failed_batches_ = 0;
};

}  // namespace distkv::storage
