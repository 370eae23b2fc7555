// Opening a store: lock the directory, read the MANIFEST, find the segments,
// rebuild the index from each sealed segment's hint file where a valid one
// exists, else by scanning every record of the segment (checking its CRC),
// check that the log holds every LSN it should, and write the MANIFEST of
// the new run.
//
// Compaction's traces: segments the MANIFEST lists as obsolete (replaced by
// a committed compaction) or reserved (written by one that never committed)
// are deleted here; compacted ones are sparse and take no part in the LSN
// check. The writer's active segment is the highest id not compacted.
//
// For each key the record with the highest LSN wins, whatever file it is in;
// tombstones take part (they are kept in the index, flagged, until every
// segment is scanned, then dropped).
//
// Damage. A bad record at the end of the newest segment, with nothing valid
// after it, is the normal trace of a crash during a write (a torn tail): the
// file is cut back to the last good record and the cut is logged. Anything
// else is damage to data that was complete: a bad record followed by valid
// ones (in any segment), a hole in the LSNs (a segment deleted or cut short),
// a newest segment the MANIFEST knows but the directory lacks, or a log that
// ends before the high-water mark of a clean close. Open then fails with
// Corruption naming the file, the offset and the missing LSNs, unless
// Options::repair (--repair) accepts the loss: damaged bytes are cut (and
// kept in a .corrupt file beside the segment), the missing LSNs are recorded
// as a gap in the MANIFEST, and a new history begins.
//
// LSNs after the open. After a clean close the log continues at the next
// LSN. After a crash the high-water mark is a reservation that may cover
// LSNs handed out and lost: the next write jumps past it (a gap record), so
// no LSN — and so no ETag — is used twice. If that run's fsync mode could
// acknowledge unsynced writes (everysec, never), acknowledged records may be
// lost: a new history begins.
#include <errno.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <string>
#include <vector>

#include "storage/coding.h"
#include "storage/bad_record.h"
#include "storage/compaction.h"
#include "storage/crc32c.h"
#include "storage/file_util.h"
#include "storage/hint_file.h"
#include "storage/hint_loader.h"
#include "storage/segment_reader.h"
#include "storage/snapshot.h"
#include "storage/store_impl.h"

namespace distkv::storage {

namespace {

constexpr size_t kScanReadBytes = 4 << 20;

std::string Range(uint64_t first, uint64_t last) {
  return first == last ? "LSN " + std::to_string(first)
                       : "LSNs " + std::to_string(first) + "-" + std::to_string(last);
}

}  // namespace

Status StoreImpl::Init() {
  Status s = CreateDirs(io_, options_.dir);
  if (!s.ok()) return s;
  const std::string lock_path = JoinPath(options_.dir, "LOCK");
  if (int err = io_->Lock(lock_path, &lock_fd_)) {
    if (err == EWOULDBLOCK)
      return Status::Busy(lock_path + " is locked: the store is open elsewhere");
    return Status::FromErrno(err, "lock " + lock_path);
  }
  if (int err = io_->OpenDir(options_.dir, &dir_fd_)) {
    dir_fd_ = -1;
    return Status::FromErrno(err, "open " + options_.dir);
  }
  manifest_writer_ = std::make_unique<ManifestWriter>(io_, options_.dir, dir_fd_);
  // A snapshot staged by a full resync becomes the store (or goes) first.
  s = InstallStaged(io_, options_.dir, dir_fd_, [this](const std::string& line) { Log(line); });
  if (!s.ok()) return s;
  return Recover();
}

Status StoreImpl::CreateFirstSegment() {
  // The file itself is created by the first batch that writes to it, which
  // also records it in the MANIFEST.
  Segment seg;
  seg.id = static_cast<uint32_t>(next_segment_id_++);
  seg.path = JoinPath(options_.dir, SegmentFileName(seg.id));
  active_id_ = seg.id;
  segments_.push_back(std::move(seg));
  return Status::OK();
}

Status StoreImpl::Recover() {
  const auto start = std::chrono::steady_clock::now();
  Manifest m;
  bool found = false;
  Status s = ReadManifest(io_, options_.dir, &m, &found);
  if (!s.ok()) {
    if (!s.IsCorruption() || !options_.repair) {
      return s.IsCorruption()
                 ? Status::Corruption(std::string(s.message()) +
                                      "; start with --repair to rebuild it from the segments")
                 : s;
    }
    Log("repair: " + s.ToString() + "; rebuilding the MANIFEST from the segments");
    found = false;
    m = Manifest{};
  }

  std::vector<std::string> names;
  s = ListDir(io_, options_.dir, &names);
  if (!s.ok()) return s;
  std::vector<uint64_t> ids;
  std::vector<uint64_t> hints;
  auto listed = [](const std::vector<uint32_t>& v, uint64_t id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  };
  uint64_t max_id = 0;
  for (const CompactedSegment& c : m.compacted) max_id = std::max<uint64_t>(max_id, c.id);
  for (uint32_t id : m.reserved) max_id = std::max<uint64_t>(max_id, id);
  for (uint32_t id : m.obsolete) max_id = std::max<uint64_t>(max_id, id);
  bool dropped_compaction_files = false;
  for (const std::string& name : names) {
    uint64_t id;
    if (ParseSegmentFileName(name, &id)) {
      const std::string path = JoinPath(options_.dir, name);
      if (id == 0 || id > 0xFFFFFFFFull) {
        return Status::Corruption("segment id out of range: " + path);
      }
      max_id = std::max(max_id, id);
      if (listed(m.obsolete, id) || listed(m.reserved, id)) {
        // Replaced by a committed compaction, or written by one that never
        // committed: either way not part of the store.
        io_->Unlink(path);
        dropped_compaction_files = true;
        Log("removed " + std::string(listed(m.obsolete, id) ? "replaced" : "uncommitted") +
            " compaction segment " + path);
        continue;
      }
      ids.push_back(id);
    } else if (name.ends_with(".hint") && name.size() > 5 &&
               ParseSegmentFileName(name.substr(0, name.size() - 5) + ".seg", &id)) {
      hints.push_back(id);
    } else if (name.ends_with(".tmp")) {
      // An unfinished file of an interrupted MANIFEST, compaction or hint write.
      const std::string path = JoinPath(options_.dir, name);
      io_->Unlink(path);
      Log("removed unfinished file " + path);
    }
  }
  std::sort(ids.begin(), ids.end());
  std::sort(hints.begin(), hints.end());
  for (uint64_t id : hints) {
    if (!std::binary_search(ids.begin(), ids.end(), id)) {
      io_->Unlink(JoinPath(options_.dir, HintFileName(id)));  // its segment is gone
    }
  }
  if (dropped_compaction_files) {
    s = SyncDir(io_, dir_fd_, options_.dir);
    if (!s.ok()) return s;
  }
  next_segment_id_ = max_id + 1;
  active_id_ = 0;
  auto is_compacted = [&](uint64_t id) {
    for (const CompactedSegment& c : m.compacted) {
      if (c.id == id) return true;
    }
    return false;
  };
  for (uint64_t id : ids) {
    if (!is_compacted(id)) active_id_ = static_cast<uint32_t>(id);
  }

  if (options_.size_index_from_hints) {
    // The hinted segments' entries bound the keys they hold (overwrites and
    // tombstones make it an overestimate, given back below).
    uint64_t hinted = 0;
    for (uint64_t id : ids) {
      uint64_t n;
      if (id != active_id_ && std::binary_search(hints.begin(), hints.end(), id) &&
          ReadHintEntryCount(io_, JoinPath(options_.dir, HintFileName(id)), &n)) {
        hinted += n;
      }
    }
    index_.Reserve(static_cast<size_t>(std::min<uint64_t>(hinted, SIZE_MAX / 2)));
  }

  ScanState st;
  st.log_start = found ? m.log_start : 0;  // 0: the first record found sets it
  st.gaps = m.gaps;
  live_bytes_ = 0;
  tombstones_ = 0;
  // Every segment is opened and sized first, so that the hint files of the
  // sealed ones can be read ahead (HintLoader) while earlier ones are
  // applied; they are applied in id order all the same.
  assert(segments_.empty());
  std::vector<uint64_t> sizes(ids.size());
  std::vector<HintLoader::Request> requests;
  for (size_t i = 0; i < ids.size(); i++) {
    Segment seg;
    seg.id = static_cast<uint32_t>(ids[i]);
    seg.path = JoinPath(options_.dir, SegmentFileName(seg.id));
    seg.compacted = is_compacted(seg.id);
    if (int err = io_->Open(seg.path, Io::kOpenExisting, &seg.fd)) {
      return Status::FromErrno(err, "open " + seg.path);
    }
    segments_.push_back(std::move(seg));
    s = FileSize(io_, segments_.back().fd, &sizes[i], segments_.back().path);
    if (!s.ok()) return s;
    if (ids[i] != active_id_ && std::binary_search(hints.begin(), hints.end(), ids[i])) {
      requests.push_back({JoinPath(options_.dir, HintFileName(ids[i])), sizes[i]});
    }
  }
  HintLoader loader(io_, index_.hash_seed(), std::move(requests));
  for (size_t i = 0; i < ids.size(); i++) {
    const bool newest = ids[i] == active_id_;
    const bool hinted = !newest && std::binary_search(hints.begin(), hints.end(), ids[i]);
    s = ScanSegment(&segments_[i], sizes[i], newest, hinted ? &loader.Take() : nullptr, &st);
    if (hinted) loader.Release();
    if (!s.ok()) return s;
  }

  // Tombstones have done their job: no older record of their key survived.
  if (tombstones_ > 0) {
    index_.EraseIf([](std::string_view, const IndexEntry& e) { return e.deleted; });
  }
  if (options_.size_index_from_hints) index_.ShrinkToFit();
  // A dropped tombstone may have held the highest LSN: it is never reused.
  // Nor is one below log_start: compaction moved it past LSNs that were
  // handed out, even when the record of the last of them is gone (it drops
  // gap records), and the log continues from log_start - 1.
  const uint64_t last = std::max({st.max_lsn, found ? m.tombstone_horizon : 0,
                                  found && m.log_start > 0 ? m.log_start - 1 : 0});

  // What the MANIFEST knows and the directory lacks.
  if (found) {
    uint64_t missing_first = 0, missing_last = 0;
    std::string what;
    if (m.active_segment != 0 && !FindSegment(m.active_segment)) {
      missing_first = std::max(m.active_first_lsn, last + 1);
      missing_last = std::max(m.high_water, missing_first);
      what = "segment " + SegmentFileName(m.active_segment) + " (the newest, from LSN " +
             std::to_string(m.active_first_lsn) +
             ") is missing: " + Range(missing_first, missing_last) + (m.clean ? "" : " (at most)") +
             " are gone";
    } else if (m.clean && last < m.high_water) {
      missing_first = last + 1;
      missing_last = m.high_water;
      what = "the log ends at LSN " + std::to_string(last) + " but the store was closed at LSN " +
             std::to_string(m.high_water) + ": " + Range(missing_first, missing_last) +
             " are missing (a segment was deleted or cut short)";
    }
    if (!what.empty()) {
      if (!options_.repair) {
        return Status::Corruption(options_.dir + ": " + what +
                                  "; start with --repair to accept the loss");
      }
      Log("repair: " + what + "; accepting the loss");
      st.new_gaps.push_back(LsnGap{missing_first, missing_last});
      if (st.first_cut_prev == 0) st.first_cut_prev = last;
      st.repaired = true;
    }
  }

  // The new run's MANIFEST.
  Manifest next = found ? m : Manifest{};
  uint64_t floor = last;
  bool new_history = !found;
  uint64_t prev_end = last;
  if (found) {
    floor = std::max(m.high_water, last);
    if (!m.clean && m.open_mode != FsyncMode::kAlways) new_history = true;
  } else {
    next.log_start = st.log_start == 0 ? 1 : st.log_start;
    next.histories.clear();
    if (!ids.empty()) Log("no MANIFEST in " + options_.dir + ": created one from the segments");
  }
  if (st.repaired) {
    new_history = true;
    prev_end = st.first_cut_prev;
  }
  for (const LsnGap& g : st.new_gaps) next.gaps.push_back(g);
  // Compaction: what an unfinished one reserved is gone; so are the files
  // a finished one replaced.
  next.reserved.clear();
  next.obsolete.clear();
  std::erase_if(next.compacted, [&](const CompactedSegment& c) { return !FindSegment(c.id); });
  if (new_history) {
    next.histories.push_back(HistoryEntry{NewHistoryId(), floor + 1, std::min(prev_end, floor)});
    if (next.histories.size() > kMaxHistories) next.histories.erase(next.histories.begin());
  }
  if (active_id_ == 0) CreateFirstSegment();
  next.active_segment = Active()->fd >= 0 ? active_id_ : 0;
  next.active_first_lsn = Active()->first_lsn;
  if (next.active_segment == 0) next.active_first_lsn = 0;
  next.clean = false;
  next.open_mode = options_.fsync;
  next.high_water = floor + kLsnReservation;
  s = WriteManifest(io_, options_.dir, dir_fd_, next);
  if (!s.ok()) return s;
  manifest_writer_->Reset(next);
  manifest_ = std::move(next);
  persisted_hw_ = manifest_.high_water;
  opened_ = true;

  total_bytes_ = 0;
  for (const Segment& seg : segments_) total_bytes_ += seg.end;
  last_lsn_ = durable_lsn_ = last;
  lsn_floor_ = floor;
  // A store that existed before carries its history change into the log, so
  // that replicas learn it; a new store's history simply starts at LSN 1.
  need_gap_ = found && new_history;

  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  Log("recovered " + std::to_string(index_.size()) + " keys from " + std::to_string(ids.size()) +
      " segments in " + std::to_string(ms) + " ms, last LSN " + std::to_string(last_lsn_) +
      (floor > last ? ", next LSN after " + std::to_string(floor) : "") +
      (new_history ? ", new history" : ""));
  return Status::OK();
}

// The LSN of each record of the non-compacted log must follow the one before
// (or be a gap record continuing from it, or follow a gap the MANIFEST
// declares). Records below log_start are leftovers of a compaction and take
// no part.
Status StoreImpl::CheckDense(const Segment& seg, uint64_t offset, const Record& rec,
                             ScanState* st) {
  if (seg.compacted) return Status::OK();
  if (st->log_start == 0) st->log_start = rec.lsn;
  if (rec.lsn < st->log_start) return Status::OK();
  const uint64_t expected = st->prev_lsn == 0 ? st->log_start : st->prev_lsn + 1;
  bool follows = rec.lsn == expected;
  if (rec.type == RecordType::kGap) {
    uint64_t prev, history;
    DecodeGapValue(rec.value, &prev, &history);
    follows = prev == expected - 1 && rec.lsn > prev;
  }
  if (!follows && rec.lsn > expected) {
    for (const LsnGap& g : st->gaps) follows |= g.first <= expected && g.last >= rec.lsn - 1;
  }
  if (!follows) {
    const std::string where = seg.path + " at offset " + std::to_string(offset);
    if (rec.lsn < expected) {
      return Status::Corruption("LSN " + std::to_string(rec.lsn) + " in " + where +
                                " does not follow LSN " + std::to_string(expected - 1) +
                                " (the log's order is broken)");
    }
    const std::string what = Range(expected, rec.lsn - 1) +
                             " are missing from the log (a segment was deleted or cut short): "
                             "LSN " +
                             std::to_string(rec.lsn) + " in " + where + " follows LSN " +
                             std::to_string(expected - 1);
    if (!options_.repair) {
      return Status::Corruption(what + "; start with --repair to accept the loss");
    }
    Log("repair: " + what + "; accepting the loss");
    st->new_gaps.push_back(LsnGap{expected, rec.lsn - 1});
    st->gaps.push_back(st->new_gaps.back());
    if (st->first_cut_prev == 0) st->first_cut_prev = expected - 1;
    st->repaired = true;
  }
  st->prev_lsn = rec.lsn;
  return Status::OK();
}

// Applies one record found by recovery (from a hint or a scan) to the index;
// hash is index_.HashKey(key).
void StoreImpl::RecoverRecord(Segment* seg, std::string_view key, uint64_t hash,
                              const IndexEntry& e, uint64_t expires_ms, ScanState* st) {
  st->Saw(seg, e.lsn);
  bool replaced;
  IndexEntry old;
  if (index_.PutIfNewer(key, hash, e, &replaced, &old)) {
    expiry_.Set(key, expires_ms);  // the newest record's expiry (none for a tombstone)
    if (replaced) {
      if (old.deleted) {
        tombstones_--;
      } else {
        live_bytes_ -= EncodedRecordSize(key.size(), old.value_len);
        SubLive(old.segment, EncodedRecordSize(key.size(), old.value_len));
      }
    }
    if (e.deleted) {
      tombstones_++;
    } else {
      live_bytes_ += EncodedRecordSize(key.size(), e.value_len);
      seg->live += EncodedRecordSize(key.size(), e.value_len);
    }
  }
}

// A sealed segment's hint file, if it can be trusted, says everything a scan
// would, without reading values. The loader read the file whole and checked
// it (CRC, every entry); nothing is applied unless the LSN check passes over
// every entry too.
Status StoreImpl::LoadHints(Segment* seg, const HintLoader::Loaded& hint, ScanState* st) {
  if (!hint.status.ok()) return hint.status;
  ScanState trial = *st;
  HintEntry h;
  for (HintFile::Cursor c(hint.file); !c.done();) {
    c.Next(&h);
    Record r;
    r.lsn = h.lsn;
    r.type = h.gap ? RecordType::kGap : h.tombstone ? RecordType::kDelete : RecordType::kPut;
    if (h.gap) r.value = h.key;
    Status dense = CheckDense(*seg, h.offset, r, &trial);
    if (!dense.ok()) return dense;
  }
  *st = std::move(trial);
  // Each insert probes the index at a place no cache holds: the slot of the
  // entry kLookahead ahead is prefetched while this one is inserted, so that
  // the misses of consecutive inserts overlap.
  constexpr size_t kLookahead = 8;
  const bool prefetch = options_.size_index_from_hints;
  const size_t n = hint.hashes.size();
  size_t i = 0;
  for (HintFile::Cursor c(hint.file); !c.done(); i++) {
    if (prefetch && i + kLookahead < n) index_.PrefetchHash(hint.hashes[i + kLookahead]);
    c.Next(&h);
    if (h.gap) {
      st->Saw(seg, h.lsn);
      continue;
    }
    IndexEntry e;
    e.lsn = h.lsn;
    e.offset = h.offset;
    e.segment = seg->id;
    e.value_len = h.value_len;
    e.deleted = h.tombstone;
    RecoverRecord(seg, h.key, hint.hashes[i], e, h.expires_ms, st);
  }
  return Status::OK();
}

Status StoreImpl::ScanSegment(Segment* seg, uint64_t file_size, bool newest,
                              const HintLoader::Loaded* hint, ScanState* st) {
  Status s;
  if (hint) {
    s = LoadHints(seg, *hint, st);
    if (s.ok()) {
      seg->written = seg->end = seg->allocated = file_size;
      seg->synced = true;
      seg->hinted = true;
      return s;
    }
    if (s.IsIOError()) return s;
    if (!s.IsNotFound()) Log("ignoring hint file: " + s.ToString() + "; scanning the segment");
  }
  SegmentReader reader(io_, seg->fd, seg->path, 0, file_size, kScanReadBytes,
                       /*skip_large_values=*/true);
  Record rec;
  std::string_view raw;
  uint64_t off;
  // The records of an atomic group wait here until its last record is read
  // (record_format.h); group_start is the offset of the group's first.
  struct Held {
    std::string key;
    IndexEntry e;
    uint64_t expires_ms;
  };
  std::vector<Held> group;
  uint64_t group_start = 0;
  uint64_t prev_before_group = 0;
  for (;;) {
    s = reader.Next(&rec, &raw, &off);
    if (!s.ok()) break;
    if (group.empty()) prev_before_group = st->prev_lsn;
    s = CheckDense(*seg, off, rec, st);
    if (!s.ok()) return s;
    if (rec.type == RecordType::kGap) {  // never part of a group
      st->Saw(seg, rec.lsn);
      continue;
    }
    IndexEntry e;
    e.lsn = rec.lsn;
    e.offset = off;
    e.segment = seg->id;
    e.value_len = static_cast<uint32_t>(reader.value_bytes());
    e.deleted = rec.type == RecordType::kDelete;
    if (rec.group_continues || !group.empty()) {
      if (group.empty()) group_start = off;
      group.push_back(Held{std::string(rec.key), e, rec.expires_ms});
      if (rec.group_continues) continue;
      for (const Held& h : group) {
        RecoverRecord(seg, h.key, index_.HashKey(h.key), h.e, h.expires_ms, st);
      }
      group.clear();
      continue;
    }
    RecoverRecord(seg, rec.key, index_.HashKey(rec.key), e, rec.expires_ms, st);
  }
  const uint64_t stop = reader.offset();
  uint64_t good = stop;
  if (!group.empty()) {
    if (newest && !seg->compacted) {
      // The log ends inside a group: none of it was acknowledged. Drop it and
      // cut the file back to where it began, as for a torn record.
      Log("dropped an incomplete atomic group of " + std::to_string(group.size()) +
          " records at the end of " + seg->path + " (offset " + std::to_string(group_start) + ")");
      if (s.IsNotFound()) s = Status::Incomplete("the log ends inside an atomic group");
      good = group_start;
      st->prev_lsn = prev_before_group;
    } else {
      for (const Held& h : group) {
        // Sealed: complete by construction.
        RecoverRecord(seg, h.key, index_.HashKey(h.key), h.e, h.expires_ms, st);
      }
    }
    group.clear();
  }
  if (!s.IsNotFound()) {
    if (!s.IsCorruption() && !s.IsIncomplete()) return s;  // an I/O error
    const std::string where = seg->path + " at offset " + std::to_string(good);
    const std::string why(s.message());
    AfterBadRecord after;
    Status f = ExamineAfterBadRecord(io_, seg->fd, seg->path, good, stop, file_size, st->max_lsn,
                                     newest, &after);
    if (!f.ok()) return f;
    if (newest && after.kind != AfterBadRecord::kDamage) {
      // Made durable with the rest of the segment below.
      if (int err = io_->Truncate(seg->fd, good))
        return Status::FromErrno(err, "truncate " + seg->path);
      const std::string dropped = std::to_string(file_size - good) + " bytes";
      if (after.kind == AfterBadRecord::kZeros) {
        Log("cut the pre-allocated space of " + seg->path + " (" + dropped + " of zeros from offset " +
            std::to_string(good) + ")");
      } else if (after.kind == AfterBadRecord::kTornLastWrite) {
        Log("truncated the torn last write of " + where + " (" + dropped + " dropped: " + why +
            "; the valid records at offset " + std::to_string(after.first_valid) +
            " on belong to the same unfinished write, whose pages reached the disk out of order)");
      } else {
        Log("truncated the torn tail of " + where + " (" + dropped + " dropped: " + why + ")");
      }
    } else {
      std::string what =
          "bad record in " + std::string(newest ? "" : "sealed ") + "segment " + where + ": " + why;
      if (after.kind == AfterBadRecord::kDamage) {
        what += " (valid records follow at offset " + std::to_string(after.first_valid) +
                ": this is damage, not a torn write)";
      }
      if (!options_.repair) {
        return Status::Corruption(what +
                                  "; start with --repair to cut the segment there (the "
                                  "cut bytes are kept in a .corrupt file)");
      }
      s = CutSegment(seg, good, file_size, what);
      if (!s.ok()) return s;
      if (st->first_cut_prev == 0) st->first_cut_prev = st->max_lsn;
      st->repaired = true;
    }
  }
  // What was read may be in the page cache only (the last process was
  // killed before syncing): make it durable before trusting it as sealed.
  s = SyncFile(io_, seg->fd, seg->path);
  if (!s.ok()) return s;
  seg->written = seg->end = seg->allocated = good;
  seg->synced = true;
  return Status::OK();
}

// --repair: keeps the bytes from `at` on in <segment>.<at>.corrupt, then cuts
// the segment there.
Status StoreImpl::CutSegment(Segment* seg, uint64_t at, uint64_t file_size,
                             const std::string& why) {
  const std::string keep = seg->path + "." + std::to_string(at) + ".corrupt";
  int fd;
  if (int err = io_->Open(keep, Io::kCreate | Io::kTruncate, &fd)) {
    return Status::FromErrno(err, "create " + keep);
  }
  Status s;
  std::string piece;
  for (uint64_t off = at; s.ok() && off < file_size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(1 << 20, file_size - off));
    piece.resize(n);
    s = PreadExact(io_, seg->fd, piece.data(), n, off, seg->path);
    if (s.ok()) s = PwriteAll(io_, fd, piece.data(), n, off - at, keep);
    off += n;
  }
  if (s.ok()) s = SyncFile(io_, fd, keep);
  io_->Close(fd);
  if (s.ok()) s = SyncDir(io_, dir_fd_, options_.dir);
  if (!s.ok()) return s;
  if (int err = io_->Truncate(seg->fd, at)) return Status::FromErrno(err, "truncate " + seg->path);
  s = SyncFile(io_, seg->fd, seg->path);
  if (!s.ok()) return s;
  Log("repair: " + why + "; cut " + std::to_string(file_size - at) + " bytes lost, kept in " +
      keep);
  return Status::OK();
}

}  // namespace distkv::storage
