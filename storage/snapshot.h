// Snapshots: a store's live records as of one LSN, read from one store
// (a primary resyncing a replica, a shard handing slots to another) and
// built into another (the replica).
//
// Reading (Store::NewSnapshot). The cursor copies the index's (key, place)
// list when it is created, at S = the newest staged LSN, optionally keeping
// only the keys a filter accepts. A copy rather than a walk of the live
// index: an index that grows or shrinks while the snapshot is read would
// move its entries under a chunked walk. The cursor pins the segments it
// will read, so a compaction that replaces them deletes them only once the
// cursor has passed them (it unpins each segment as it leaves it: entries
// are read in file order). It hands out nothing until every record up to S
// is durable, and fails (Busy) if a failed batch undid some of them. Then it
// returns the records, byte for byte as on disk (the CRC-framed encoding of
// record_format.h), each CRC checked, a slice at a time.
//
// Building (SnapshotWriter). The records go into "<dir>/staging/": segments
// listed as compacted (sparse, one record per key) with their hint files,
// and a MANIFEST whose log_start is S + 1 and whose tombstone horizon is S
// (every LSN up to S is summed up by the snapshot), so the store opened
// there continues with LSN S + 1. Finish() syncs all of it and then writes
// "staging/COMPLETE", which lists the files: that write is the moment the
// staged store becomes the store.
//
// Installing (InstallStaged, called by Store::Open before recovery). With
// COMPLETE present, and every file it lists staged, COMPLETE is renamed
// INSTALLING; then the staged files are renamed over the store's (the
// MANIFEST last), store files not in the list are deleted, and INSTALLING
// goes; every step can be repeated, so a crash at any point is finished by
// the next open. A COMPLETE whose files are not all staged (never the
// case unless something removed them) is discarded: nothing was moved
// yet, and a store file of the same name is the old store's, never to be
// taken for the snapshot's. Without COMPLETE the staging directory is emptied: a crash
// while a snapshot was received leaves the old store as it was. Either way
// a restart finds the old store or the new one, never a mix, and leftovers
// in staging/ never stop a start. The open takes staging/LOCK as a writer
// does: while a writer of the same process lives (an abandoned snapshot
// still finishing in the thread pool) the directory is left to it, so
// files are never deleted under a writer that goes on to list them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/hint_file.h"
#include "storage/io.h"
#include "storage/manifest.h"
#include "storage/status.h"

namespace distkv::storage {

inline constexpr char kStagingDirName[] = "staging";
inline constexpr char kStagingCompleteFileName[] = "COMPLETE";
// COMPLETE, renamed once its install has begun (see InstallStaged).
inline constexpr char kStagingInstallingFileName[] = "INSTALLING";
// flock(2)ed by the writer of the attempt in progress (see Create).
inline constexpr char kStagingLockFileName[] = "LOCK";

class SnapshotWriter {
 public:
  // Empties (creating it if needed) dir/staging for a snapshot at lsn whose
  // record at lsn belongs to history `history`. segment_bytes bounds each
  // segment written. The writer holds staging/LOCK until it is destroyed:
  // while an earlier writer of the directory lives (its Finish may still
  // run in another thread), Create answers Busy instead of emptying the
  // directory under it.
  static Status Create(Io* io, const std::string& dir, uint64_t lsn, uint64_t history,
                       uint64_t segment_bytes, std::unique_ptr<SnapshotWriter>* out);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Whole encoded records (any number): each must be a put with a valid CRC
  // and an LSN at or below the snapshot's (Corruption otherwise). Writes,
  // never syncs: the disk's pace is Finish's.
  Status Add(std::string_view records);
  // Syncs every segment, writes the hint files and the MANIFEST, and then
  // COMPLETE. Nothing may be added afterwards. Touches only the writer's
  // files: it may run on another thread (the replica runs it in libuv's
  // thread pool).
  Status Finish();
  // Removes what the writer staged, COMPLETE first: a snapshot finished for
  // a stream that no longer applies (its replica was re-pointed or stopped)
  // must not be installed by the next open.
  void Discard();

  uint64_t lsn() const { return lsn_; }
  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }
  const std::string& staging_dir() const { return staging_; }

 private:
  SnapshotWriter(Io* io, std::string dir, uint64_t lsn, uint64_t history, uint64_t segment_bytes);
  Status CloseSegment();

  // A segment written in full, waiting for Finish to sync it and write its
  // hint file.
  struct ClosedSegment {
    uint32_t id;
    int fd;
    std::string hint;
  };

  Io* io_;
  const std::string dir_;
  const std::string staging_;
  const uint64_t lsn_;
  const uint64_t history_;
  const uint64_t segment_bytes_;
  int staging_fd_ = -1;
  int lock_fd_ = -1;  // staging/LOCK, held for the writer's life
  int fd_ = -1;       // the segment being written
  uint32_t id_ = 0;
  uint64_t size_ = 0;
  uint64_t min_lsn_ = 0, max_lsn_ = 0;
  HintBuilder hint_;
  std::vector<ClosedSegment> closed_;
  std::vector<CompactedSegment> segments_;
  std::vector<std::string> files_;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
};

// True while a writer holds dir/staging/LOCK: a snapshot begun now would be
// refused (Busy).
bool StagingInUse(Io* io, const std::string& dir);

// Removes dir/staging/COMPLETE, so that the snapshot staged there is never
// installed (it was completed for a stream that no longer applies). Busy,
// and nothing removed, while a writer holds staging/LOCK: the directory is
// then that writer's, which emptied it when it began.
Status CancelStaged(Io* io, const std::string& dir);

// Finishes or discards what dir/staging holds (see above), unless a writer
// holds staging/LOCK. Called by Store::Open before recovery, with the
// directory locked; log receives a line when it did anything.
Status InstallStaged(Io* io, const std::string& dir, int dir_fd,
                     const std::function<void(const std::string&)>& log);

}  // namespace distkv::storage
