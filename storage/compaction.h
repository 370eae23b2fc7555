// Compaction (the Bitcask merge) and hint writing, as jobs run off the
// store's thread.
//
// A compaction merges every sealed segment (every segment but the active
// one) into new segments that hold only their live records, each with a hint
// file. Records are copied verbatim, so they keep their LSN and CRC (a
// record with the "group continues" bit is re-encoded without it: sealed
// records need no groups, and its group's other records may be dropped).
//
//   plan (owner thread, TakeCompaction)   the inputs, ids reserved for the
//       outputs (at most one per input: packing the same records in the
//       same order never needs more files), and the MANIFEST fields to
//       write. The index is not read: deciding what is live needs no lock.
//   Run (any thread; Begin() is step 1, Main() steps 2 and 3, End() step 4)
//     1 reserve   the MANIFEST lists the reserved ids, so an output on disk
//                 is never taken for the writer's segment, and one that was
//                 not committed is deleted by recovery.
//     2 select    the newest record of each key among the inputs (by LSN,
//                 from their hint files, or a CRC-checked scan), in a
//                 private KeyIndex; keys whose newest record is in the
//                 completed part of the active segment are left out. A tombstone is dropped: no
//                 older record of its key can remain, since every segment older than the active one
//                 is an input and the active one holds only newer LSNs — unless it is above
//                 keep_tombstones_after. A put whose expiry has come by the
//                 store's clock when the compaction was planned
//                 (expired_by_ms, 0 on a store without a clock) is dropped
//                 by the same rule: it is a delete nobody wrote yet.
//     3 write     the selected records in LSN order into "<id>.seg.tmp",
//                 each checked against its CRC as it is copied; at
//                 segment_bytes an output is fsynced, renamed to "<id>.seg"
//                 and given its hint file.
//     4 commit    MANIFEST: outputs compacted, inputs obsolete, horizon
//                 raised to the highest dropped tombstone, log_start past the
//                 inputs. This one atomic rename is the moment the
//                 compaction takes effect.
//   FinishJob (owner thread)  the outputs join the store, the inputs are
//       flagged obsolete (still open: reads keep working).
//   CompactionStep (owner thread, a slice per call)  repoints each moved
//       key's index entry, only where it still names the record copied (same
//       LSN in an input): a write that raced the merge wins.
//   release  once repointing is done, no write staged before it can be
//       rolled back any more, and no log cursor pins them, the inputs are
//       closed and deleted.
//
// Pacing: with CompactionOptions::bytes_per_s, every read and write of
// steps 2 and 3 goes through a LimitedIo (rate_limiter.h), so the merge of N
// bytes takes at least about N / bytes_per_s; the MANIFEST steps are not
// paced (the requests' batches may wait for their lock).
//
// Gap records are not copied: compacted segments are sparse anyway, and the
// MANIFEST keeps the histories they announced.
//
// A crash at any moment leaves either the inputs in force (before 4:
// recovery deletes the outputs under reserved ids) or the outputs (after 4:
// recovery deletes the obsolete inputs). Nothing acknowledged is lost either
// way, and no deleted key comes back. A compaction that fails (disk full, a
// bad record in an input) removes its outputs and leaves the store as it was.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "storage/io.h"
#include "storage/manifest.h"
#include "storage/rate_limiter.h"
#include "storage/store.h"

namespace distkv::storage {

class CompactionJobImpl final : public StoreJob {
 public:
  struct Input {
    uint32_t id;
    std::string path;
    int fd;
    uint64_t size;
    uint64_t last_lsn;
  };
  struct Output {
    uint32_t id;
    std::string path;
    uint64_t size = 0;
    uint64_t first_lsn = 0;
    uint64_t last_lsn = 0;
  };
  // Where one copied record went. moved is in LSN order.
  struct Moved {
    uint64_t lsn;
    uint64_t key_at;  // in keys
    uint32_t key_len;
    uint32_t segment;
    uint64_t offset;
    uint32_t value_len;
    bool tombstone;
  };

  // Plan.
  std::string dir;
  uint64_t segment_bytes = 0;
  CompactionOptions options;
  uint64_t expired_by_ms = 0;  // puts expiring at or before this are dropped (0: none)
  std::vector<Input> inputs;
  // The completed part of the active segment: read only to learn which
  // input records it already supersedes (they are not copied).
  Input active{0, "", -1, 0, 0};
  std::vector<uint32_t> reserved;
  Io* io = nullptr;
  int dir_fd = -1;
  ManifestWriter* manifest_writer = nullptr;
  Manifest state_before;  // its compaction fields are the job's to change
  const std::function<int(std::string_view)>* fault_hook = nullptr;
  uint64_t input_bytes_ = 0;
  // With options.bytes_per_s: io is limited_io, over the store's Io.
  std::unique_ptr<RateLimiter> limiter;
  std::unique_ptr<LimitedIo> limited_io;

  // Results of Run().
  std::vector<Output> outputs;
  std::vector<Moved> moved;
  std::string keys;
  uint64_t dropped_tombstones = 0;
  // The expired puts dropped (key, LSN): the index forgets them at FinishJob.
  std::vector<std::pair<std::string, uint64_t>> dropped_expired;
  uint64_t horizon = 0;  // highest LSN of a tombstone dropped (0: none)
  Manifest state_after;
  bool committed = false;

  Status Begin() override;  // step 1
  Status Main() override;   // steps 2 and 3
  Status End() override;    // step 4
  bool is_compaction() const override { return true; }
  uint64_t input_bytes() const override { return input_bytes_; }
  uint64_t progress() const override { return progress_.load(std::memory_order_relaxed); }
  size_t input_segments() const override { return inputs.size(); }
  size_t output_segments() const override { return outputs.size(); }
  std::string_view key(const Moved& m) const { return {keys.data() + m.key_at, m.key_len}; }
  // The output place of the record with this LSN, or nullptr.
  const Moved* Find(uint64_t lsn) const;

 private:
  int Inject(std::string_view step) const;
  Status Select(std::vector<Moved>* chosen);
  Status Write(const std::vector<Moved>& chosen);
  Status CloseOutput(Output* out, int fd, const std::string& hint);

  std::atomic<uint64_t> progress_{0};
};

// Hint files: the store's owner asks for a hint job at each of its checks
// (Store::TakeHintJob, every second on a node). After a job that failed (a
// full disk), the next 1, 2, 4 ... kMaxHintSkip calls plan none, doubling
// with each failure in a row and back to 1 after a job that succeeds: a
// full disk costs one attempt and one log line per step, not one a check
// (the compactor backs off the same way after a failed compaction).
inline constexpr uint64_t kMaxHintSkip = 64;

// Writes the hint files of sealed segments that have none, reading each
// segment once (CRC-checked).
class HintJobImpl final : public StoreJob {
 public:
  struct Target {
    uint32_t id;
    std::string path;
    int fd;
    uint64_t size;
  };
  std::string dir;
  Io* io = nullptr;
  std::vector<Target> targets;
  const std::function<int(std::string_view)>* fault_hook = nullptr;
  uint64_t input_bytes_ = 0;
  std::vector<uint32_t> written;  // ids whose hint file Run() wrote

  Status Main() override;
  bool is_compaction() const override { return false; }
  uint64_t input_bytes() const override { return input_bytes_; }
  uint64_t progress() const override { return progress_.load(std::memory_order_relaxed); }
  size_t input_segments() const override { return targets.size(); }
  size_t output_segments() const override { return 0; }  // hint files only

 private:
  std::atomic<uint64_t> progress_{0};
};

}  // namespace distkv::storage
