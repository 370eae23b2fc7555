// Opening a store: lock the directory, find the segments, and rebuild the
// index by scanning every record of every segment, checking its CRC.
//
// For each key the record with the highest LSN wins, whatever file it is in;
// tombstones take part (they are kept in the index, flagged, until every
// segment is scanned, then dropped). A bad or torn record at the end of the
// newest segment is the normal trace of a crash during a write: the file is
// cut back to the last good record and the cut is logged. A bad record in any
// other segment is damage to data that was complete and synced: Open fails
// with Corruption naming the file and offset, unless Options::repair asks to
// cut the segment there, which is logged with the bytes lost.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "storage/file_util.h"
#include "storage/segment_reader.h"
#include "storage/store_impl.h"

namespace distkv::storage {

Status StoreImpl::Init() {
  Status s = CreateDirs(options_.dir);
  if (!s.ok()) return s;
  s = lock_.Acquire(JoinPath(options_.dir, "LOCK"));
  if (!s.ok()) return s;
  dir_fd_ = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return Status::FromErrno(errno, "open " + options_.dir);
  s = Recover();
  if (!s.ok()) return s;
  if (segments_.empty()) s = CreateFirstSegment();
  return s;
}

Status StoreImpl::CreateFirstSegment() {
  Segment seg;
  seg.id = 1;
  seg.path = JoinPath(options_.dir, SegmentFileName(seg.id));
  seg.fd = ::open(seg.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (seg.fd < 0) return Status::FromErrno(errno, "create " + seg.path);
  segments_.push_back(std::move(seg));
  if (::fsync(dir_fd_) != 0) return Status::FromErrno(errno, "fsync " + options_.dir);
  return Status::OK();
}

Status StoreImpl::Recover() {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> names;
  Status s = ListDir(options_.dir, &names);
  if (!s.ok()) return s;
  std::vector<uint64_t> ids;
  for (const std::string& name : names) {
    uint64_t id;
    if (ParseSegmentFileName(name, &id)) {
      if (id == 0 || id > 0xFFFFFFFFull) {
        return Status::Corruption("segment id out of range: " + JoinPath(options_.dir, name));
      }
      ids.push_back(id);
    } else if (name.ends_with(".tmp")) {
      // An unfinished file of an interrupted compaction or hint write.
      const std::string path = JoinPath(options_.dir, name);
      ::unlink(path.c_str());
      Log("removed unfinished file " + path);
    }
  }
  std::sort(ids.begin(), ids.end());

  uint64_t max_lsn = 0;
  live_bytes_ = 0;
  tombstones_ = 0;
  for (size_t i = 0; i < ids.size(); i++) {
    Segment seg;
    seg.id = static_cast<uint32_t>(ids[i]);
    seg.path = JoinPath(options_.dir, SegmentFileName(seg.id));
    seg.fd = ::open(seg.path.c_str(), O_RDWR | O_CLOEXEC);
    if (seg.fd < 0) return Status::FromErrno(errno, "open " + seg.path);
    segments_.push_back(std::move(seg));
    s = RecoverSegment(&segments_.back(), i + 1 == ids.size(), &max_lsn);
    if (!s.ok()) return s;
  }

  // Tombstones have done their job: no older record of their key survived.
  if (tombstones_ > 0) {
    index_.EraseIf([](std::string_view, const IndexEntry& e) { return e.deleted; });
  }
  total_bytes_ = 0;
  for (const Segment& seg : segments_) total_bytes_ += seg.end;
  last_lsn_ = durable_lsn_ = max_lsn;

  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  Log("recovered " + std::to_string(index_.size()) + " keys from " +
      std::to_string(segments_.size()) + " segments in " + std::to_string(ms) + " ms, last LSN " +
      std::to_string(last_lsn_));
  return Status::OK();
}

Status StoreImpl::RecoverSegment(Segment* seg, bool newest, uint64_t* max_lsn) {
  uint64_t file_size;
  Status s = FileSize(seg->fd, &file_size, seg->path);
  if (!s.ok()) return s;
  SegmentReader reader(seg->fd, seg->path, 0, file_size, 4 << 20);
  Record rec;
  std::string_view raw;
  uint64_t off;
  for (;;) {
    s = reader.Next(&rec, &raw, &off);
    if (!s.ok()) break;
    IndexEntry e;
    e.lsn = rec.lsn;
    e.offset = off;
    e.segment = seg->id;
    e.value_len = static_cast<uint32_t>(rec.value.size());
    e.deleted = rec.type == RecordType::kDelete;
    bool replaced;
    IndexEntry old;
    if (index_.PutIfNewer(rec.key, e, &replaced, &old)) {
      if (replaced) {
        if (old.deleted) {
          tombstones_--;
        } else {
          live_bytes_ -= EncodedRecordSize(rec.key.size(), old.value_len);
        }
      }
      if (e.deleted) {
        tombstones_++;
      } else {
        live_bytes_ += raw.size();
      }
    }
    if (seg->first_lsn == 0 || rec.lsn < seg->first_lsn) seg->first_lsn = rec.lsn;
    seg->last_lsn = std::max(seg->last_lsn, rec.lsn);
    *max_lsn = std::max(*max_lsn, rec.lsn);
  }
  const uint64_t good = reader.offset();
  if (!s.IsNotFound()) {
    if (!s.IsCorruption() && !s.IsIncomplete()) return s;  // an I/O error
    const std::string where = seg->path + " at offset " + std::to_string(good);
    const std::string lost = std::to_string(file_size - good) + " bytes";
    if (!newest && !options_.repair) {
      return Status::Corruption("bad record in sealed segment " + where + ": " +
                                std::string(s.message()) +
                                " (Options::repair truncates the segment there)");
    }
    if (::ftruncate(seg->fd, static_cast<off_t>(good)) != 0 || ::fdatasync(seg->fd) != 0) {
      return Status::FromErrno(errno, "truncate " + seg->path);
    }
    if (newest) {
      Log("truncated the torn tail of " + where + " (" + lost +
          " dropped: " + std::string(s.message()) + ")");
    } else {
      Log("repair: cut sealed segment " + where + ", " + lost + " lost (" +
          std::string(s.message()) + ")");
    }
  }
  seg->written = seg->end = good;
  seg->synced = true;
  return Status::OK();
}

}  // namespace distkv::storage
