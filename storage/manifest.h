// MANIFEST: the small file of a store directory that holds what recovery
// must not have to guess. It is replaced atomically, never edited: the new
// contents go to MANIFEST.tmp, which is fdatasync'ed, renamed over MANIFEST,
// and the directory is fsync'ed. A crash leaves either the old or the new
// MANIFEST (and perhaps a MANIFEST.tmp, which the next open deletes).
//
// Format: text, one field a line, "name value..." separated by single
// spaces, numbers in decimal (history ids in 16 hex digits), in this order:
//
//   distkv-manifest 1                         format version
//   state closed | open <fsync mode>          how the last run left the store
//   high_water <lsn>                          see below
//   log_start <lsn>                           first LSN the log holds complete
//   tombstone_horizon <lsn>                   highest LSN of a dropped tombstone
//   active_segment <id> <first lsn>           newest segment created, its first LSN
//   history <id> <start lsn> <prev end lsn>   one line per history, oldest first
//   gap <first lsn> <last lsn>                zero or more: LSNs --repair gave up
//   compacted <id> <min lsn> <max lsn>        zero or more: segments compaction wrote
//   reserved <id>                             zero or more: ids a running compaction writes
//   obsolete <id>                             zero or more: segments a compaction replaced
//   crc <8 hex digits>                        CRC-32C of every byte before this line
//
// high_water: no LSN above it has ever been handed out, and no LSN at or
// below it is handed out again. While the store is open it is a reservation
// (the last LSN handed out plus up to a million, extended as LSNs are used),
// so it costs one MANIFEST write per half a million writes; "state closed"
// says a clean close wrote it exact (every LSN up to it is in the log).
//
// log_start: every LSN from log_start to the newest record is in the
// non-compacted segments, except the LSNs that gap records (record_format.h)
// or gap lines declare absent. Records below it may survive only in
// compacted segments (sparse: compaction keeps live records only).
//
// history: a history is a run of LSNs every node of a shard agrees on. A new
// one starts (with a random 64-bit id) when a store is created, when --repair
// cuts records, and when a crash under fsync = "everysec" or "never" may have
// lost acknowledged records. Its line says where it starts and the last LSN
// it shares with the previous history; replication compares these. At most
// kMaxHistories are kept.
//
// compacted, reserved, obsolete: a compaction (storage/compaction.h) first
// lists the ids it will give its outputs as reserved (an output found under
// a reserved id was never committed: recovery deletes it), then commits in
// one MANIFEST write that lists its outputs as compacted and its inputs as
// obsolete (recovery deletes them, whatever order their unlinks had reached)
// and raises log_start and tombstone_horizon. The writer's active segment is
// the highest id that is not compacted.
//
// Two threads write the MANIFEST of an open store: the one running a batch
// and the one running a compaction. Each owns some fields (the batch: state,
// high_water, active_segment, history, gap; the compaction: log_start,
// tombstone_horizon, compacted, reserved, obsolete), and ManifestWriter
// serializes their writes so that neither undoes the other's.
//
// Unknown lines or versions are refused (Corruption): a MANIFEST from a newer
// version is never half-understood.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "storage/io.h"
#include "storage/status.h"
#include "storage/store.h"

namespace distkv::storage {

inline constexpr char kManifestFileName[] = "MANIFEST";
inline constexpr size_t kMaxHistories = 32;

struct HistoryEntry {
  uint64_t id = 0;
  uint64_t start_lsn = 0;     // first LSN of this history
  uint64_t prev_end_lsn = 0;  // last LSN shared with the previous history (0: none)
  bool operator==(const HistoryEntry&) const = default;
};

struct LsnGap {
  uint64_t first = 0;
  uint64_t last = 0;
  bool operator==(const LsnGap&) const = default;
};

struct CompactedSegment {
  uint32_t id = 0;
  uint64_t min_lsn = 0;
  uint64_t max_lsn = 0;
  bool operator==(const CompactedSegment&) const = default;
};

struct Manifest {
  bool clean = false;                        // "state closed"
  FsyncMode open_mode = FsyncMode::kAlways;  // with "state open"
  uint64_t high_water = 0;
  uint64_t log_start = 1;
  uint64_t tombstone_horizon = 0;
  uint32_t active_segment = 0;  // 0: no segment yet
  uint64_t active_first_lsn = 0;
  std::vector<HistoryEntry> histories;  // never empty once written; back() is current
  std::vector<LsnGap> gaps;
  std::vector<CompactedSegment> compacted;
  std::vector<uint32_t> reserved;
  std::vector<uint32_t> obsolete;

  const HistoryEntry& history() const { return histories.back(); }
  bool operator==(const Manifest&) const = default;
};

std::string EncodeManifest(const Manifest& m);
// Corruption (saying what is wrong) unless text is a whole, valid MANIFEST.
Status DecodeManifest(std::string_view text, Manifest* m);

// Reads dir/MANIFEST. *found is false (and OK returned) if there is none.
Status ReadManifest(Io* io, const std::string& dir, Manifest* m, bool* found);
// Replaces dir/MANIFEST atomically, as described above; dir_fd is the
// directory's Io handle. Durable when it returns OK. On failure the old
// MANIFEST stands, unless *uncertain is set: the rename happened but the
// directory sync failed, so either file may be the one a restart finds.
Status WriteManifest(Io* io, const std::string& dir, int dir_fd, const Manifest& m,
                     bool* uncertain = nullptr);

// The fields each writer of an open store's MANIFEST owns (see above).
void CopyWriterFields(const Manifest& from, Manifest* to);
void CopyCompactionFields(const Manifest& from, Manifest* to);

class ManifestWriter {
 public:
  ManifestWriter(Io* io, std::string dir, int dir_fd)
      : io_(io), dir_(std::move(dir)), dir_fd_(dir_fd) {}
  // What is on disk (after recovery wrote it).
  void Reset(const Manifest& on_disk) {
    std::lock_guard<std::mutex> lock(mu_);
    on_disk_ = on_disk;
  }
  // Applies copy (one of the Copy...Fields above, from the caller's view) to
  // the MANIFEST on disk and writes the result, as WriteManifest. Any thread.
  Status Update(const Manifest& from, void (*copy)(const Manifest&, Manifest*),
                bool* uncertain = nullptr);

 private:
  Io* io_;
  const std::string dir_;
  const int dir_fd_;
  std::mutex mu_;
  Manifest on_disk_;
};

// A random history id (never 0).
uint64_t NewHistoryId();

}  // namespace distkv::storage
