// LogCursor over a StoreImpl: walks the writer's segments in id order (which
// is LSN order) and returns the encoded records with LSN > its position,
// reading only bytes of completed batches. Compacted segments are never
// read: they hold only the live records of their range, and a reader that
// needs the log from inside that range gets a snapshot instead. The segment
// the cursor reads is pinned: a compaction that replaces it deletes it only
// once the cursor has moved on. When the log cannot supply every record
// after the position (it starts later, or was compacted) the answer is
// NotFound, never a gap: replication then falls back to a snapshot. Each record it returns has the
// LSN after the previous one, or is a gap record continuing from it; a hole
// is Corruption naming the file and offset, never passed on.
#include <algorithm>

#include "storage/compaction.h"
#include "storage/segment_reader.h"
#include "storage/store_impl.h"

namespace distkv::storage {

namespace {

class LogCursorImpl final : public LogCursor {
 public:
  LogCursorImpl(const StoreImpl* store, uint64_t after_lsn) : store_(store), pos_(after_lsn) {}
  ~LogCursorImpl() override { MoveTo(0); }

  Status Next(std::string* out, size_t max_bytes) override;
  uint64_t position() const override { return pos_; }

  // Pins, from the start, the segment the record after the position is in,
  // or the active segment if that record is not written yet: a compaction
  // before the first Next() then keeps what the cursor will read.
  void Anchor() {
    for (const Segment& s : store_->segments()) {
      if (s.written > 0 && !s.compacted && s.last_lsn > pos_) {
        MoveTo(s.id);
        return;
      }
    }
    MoveTo(store_->active_id());
  }

 private:
  // The segment to continue in, or nullptr when the durable log has nothing
  // after pos_. NotFound if the segment the cursor was reading is gone.
  Status Locate(const Segment** seg);
  // OK if rec may follow pos_.
  Status CheckFollows(const Record& rec, const std::string& path, uint64_t offset) const;
  // Moves the pin (and the position) to segment id (0: none).
  void MoveTo(uint32_t id) {
    if (id == segment_) return;
    // Pin the next before unpinning the last: the last pin on a replaced
    // segment releases every replaced one.
    if (id != 0) store_->Pin(id);
    const uint32_t last = segment_;
    segment_ = id;
    offset_ = 0;
    if (last != 0) store_->Unpin(last);
  }

  const StoreImpl* store_;
  uint64_t pos_;
  uint32_t segment_ = 0;  // 0: not positioned yet
  uint64_t offset_ = 0;   // next byte to read in segment_
};

Status LogCursorImpl::Locate(const Segment** seg) {
  const std::vector<Segment>& segs = store_->segments();
  *seg = nullptr;
  if (segment_ != 0) {
    const Segment* s = store_->FindSegment(segment_);
    if (!s) {
      return Status::NotFound("segment " + std::to_string(segment_) +
                              " no longer exists; the log after LSN " + std::to_string(pos_) +
                              " is incomplete");
    }
    if (offset_ < s->written) {
      *seg = s;
      return Status::OK();
    }
    // Done with this segment: continue in the next one that has records.
    auto it = std::upper_bound(segs.begin(), segs.end(), segment_,
                               [](uint32_t v, const Segment& x) { return v < x.id; });
    for (; it != segs.end(); ++it) {
      if (it->written > 0 && !it->compacted) {
        MoveTo(it->id);  // may release replaced segments: look it up again
        *seg = store_->FindSegment(segment_);
        break;
      }
    }
    return Status::OK();
  }
  for (const Segment& s : segs) {
    if (s.written > 0 && !s.compacted && s.last_lsn > pos_) {
      MoveTo(s.id);
      *seg = store_->FindSegment(segment_);
      break;
    }
  }
  return Status::OK();
}

Status LogCursorImpl::CheckFollows(const Record& rec, const std::string& path,
                                   uint64_t offset) const {
  uint64_t prev = 0, history;
  if (rec.type == RecordType::kGap) {
    DecodeGapValue(rec.value, &prev, &history);
    if (prev == pos_) return Status::OK();
  } else if (rec.lsn == pos_ + 1) {
    return Status::OK();
  }
  // The position itself may be missing from this log: LSNs a gap record
  // skips (burned, or lost by another history), or a range --repair gave up.
  if (rec.type == RecordType::kGap && prev < pos_) {
    return Status::NotFound("LSN " + std::to_string(pos_) +
                            " is not in this log (it lies in a gap before LSN " +
                            std::to_string(rec.lsn) + ")");
  }
  for (const LsnGap& g : store_->manifest().gaps) {
    if (g.first <= pos_ + 1 && g.last >= pos_ + 1) {
      return Status::NotFound("LSNs " + std::to_string(g.first) + "-" + std::to_string(g.last) +
                              " were lost (repair); the log cannot continue after LSN " +
                              std::to_string(pos_));
    }
  }
  return Status::Corruption("hole in the log: LSN " + std::to_string(rec.lsn) + " in " + path +
                            " at offset " + std::to_string(offset) + " follows LSN " +
                            std::to_string(pos_));
}

Status LogCursorImpl::Next(std::string* out, size_t max_bytes) {
  // Bytes read, records skipped before the position included: the slice is
  // bounded by what is read, not only by what is returned, so a cursor that
  // starts near the end of a large segment skips it over several calls.
  size_t scanned = 0;
  while (pos_ < store_->durable_lsn() && (scanned == 0 || scanned < max_bytes)) {
    const Segment* seg;
    Status located = Locate(&seg);
    if (!located.ok()) return located;
    if (!seg) break;
    const size_t want = max_bytes > scanned ? max_bytes - scanned : 1;
    SegmentReader reader(store_->io(), seg->fd, seg->path, offset_, seg->written,
                         std::clamp<size_t>(want, 64 << 10, 4 << 20));
    Record rec;
    std::string_view raw;
    uint64_t off;
    Status s;
    for (;;) {
      s = reader.Next(&rec, &raw, &off);
      if (!s.ok()) break;
      scanned += raw.size();
      if (rec.lsn <= pos_) {
        offset_ = reader.offset();
        if (scanned >= max_bytes) break;
        continue;
      }
      Status hole = CheckFollows(rec, seg->path, off);
      if (!hole.ok()) return hole;
      offset_ = reader.offset();
      out->append(raw);
      pos_ = rec.lsn;
      if (scanned >= max_bytes) break;
    }
    if (s.IsNotFound()) {
      offset_ = seg->written;
    } else if (!s.ok()) {
      return s;
    }
  }
  return Status::OK();
}

}  // namespace

Status StoreImpl::NewLogCursor(uint64_t after_lsn, std::unique_ptr<LogCursor>* cursor) {
  // The oldest record of the writer's log; records before it are not in this
  // log (the store began from a later LSN, or they were compacted).
  uint64_t oldest = 0;
  for (const Segment& s : segments_) {
    if (s.obsolete || s.compacted) continue;
    if (s.first_lsn != 0 && (oldest == 0 || s.first_lsn < oldest)) oldest = s.first_lsn;
  }
  if (after_lsn + 1 < manifest_.log_start) oldest = std::max(oldest, manifest_.log_start);
  if (oldest > after_lsn + 1) {
    return Status::NotFound("the log starts at LSN " + std::to_string(oldest) +
                            "; records after LSN " + std::to_string(after_lsn) +
                            " are not all in it");
  }
  auto c = std::make_unique<LogCursorImpl>(this, after_lsn);
  c->Anchor();
  *cursor = std::move(c);
  return Status::OK();
}

}  // namespace distkv::storage
