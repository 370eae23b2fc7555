// LogCursor over a StoreImpl: returns the encoded records with LSN > its
// position, in LSN order, reading only bytes of completed batches.
//
// The log it reads has two parts. The writer's segments hold every record
// from the MANIFEST's log_start on, dense (each LSN the previous + 1, or a
// gap record continuing from it). Below log_start, compacted segments hold
// only the records that were live when they were written, sorted by LSN
// (compaction.h), with holes where dead records were. A cursor starting in
// that range returns those live records (the Kafka rule: whoever applies
// them on top of the log up to the position ends with the same data) as
// long as no tombstone after its position was dropped (position >=
// tombstone horizon); and because a reader of the log requires every
// record to follow the one before, the cursor puts a gap record of its own
// in front of each record that follows a hole: LSN = the record's LSN - 1,
// previous LSN = the cursor's position, history = the primary's at that
// record. So the stream stays dense and a replica's log after such a resume
// recovers like any other.
//
// Which segment comes next: the dense log where it holds the LSN after the
// position (a writer segment, replaced by a compaction or not: a pin keeps
// it readable), otherwise the compacted segment that holds the next live
// record; moving into a compacted segment checks the horizon again (a
// compaction while the cursor reads may have dropped tombstones it has not
// returned yet: NotFound, and replication falls back to a snapshot). The
// segment the cursor reads is pinned: a compaction that replaces it deletes
// it only once the cursor has moved on. Inside the dense log a hole is
// Corruption naming the file and offset, never passed on.
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
  bool reads_replaced() const override {
    const Segment* s = segment_ ? store_->FindSegment(segment_) : nullptr;
    return s && s->obsolete;
  }

  // Pins, from the start, the segment the record after the position is in,
  // or the active segment if that record is not written yet: a compaction
  // before the first Next() then keeps what the cursor will read.
  void Anchor() {
    const Segment* next = Following();
    MoveTo(next ? next->id : store_->active_id());
    sparse_ = next && Jumps(*next);
  }

 private:
  // The segment holding the records right after pos_ (see the top of the
  // file), other than the one the cursor is in; nullptr when the durable log
  // has nothing after pos_.
  const Segment* Following() const;
  // Reading next after pos_ skips LSNs a compaction removed.
  bool Jumps(const Segment& next) const {
    return next.compacted || (next.first_lsn > pos_ + 1 && pos_ + 1 < store_->manifest().log_start);
  }
  // The segment to continue in, or nullptr when the durable log has nothing
  // after pos_. NotFound if the segment the cursor was reading is gone, or
  // the compacted range it moves into lost a tombstone after pos_.
  Status Locate(const Segment** seg);
  // OK if rec may follow pos_.
  Status CheckFollows(const Record& rec, const std::string& path, uint64_t offset) const;
  // Appends rec (raw: its encoding) after pos_ in the compacted range: a gap
  // record from pos_ first where rec does not follow it.
  void AppendSparse(const Record& rec, std::string_view raw, std::string* out);
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
  // The records returned last came from a compacted segment: the next one
  // may follow a hole (filled with a gap record), even from the dense log.
  bool sparse_ = false;
};

const Segment* LogCursorImpl::Following() const {
  const Segment* dense = nullptr;
  const Segment* compacted = nullptr;
  for (const Segment& s : store_->segments()) {
    if (s.written == 0 || s.id == segment_ || s.last_lsn <= pos_) continue;
    const Segment*& best = s.compacted ? compacted : dense;
    // Of two equally placed compacted segments, the one in force: its
    // generation is what the horizon check speaks of.
    if (!best || s.first_lsn < best->first_lsn ||
        (s.first_lsn == best->first_lsn && best->obsolete && !s.obsolete)) {
      best = &s;
    }
  }
  if (dense && dense->first_lsn <= pos_ + 1) return dense;  // the dense log goes on
  if (compacted && (!dense || compacted->first_lsn < dense->first_lsn)) return compacted;
  return dense;
}

Status LogCursorImpl::Locate(const Segment** seg) {
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
  }
  // Done with this segment (or none yet): continue where the next record is.
  const Segment* next = Following();
  if (!next) return Status::OK();
  if (Jumps(*next)) {
    if (store_->tombstone_horizon() > pos_) {
      return Status::NotFound("a compaction dropped tombstones up to LSN " +
                              std::to_string(store_->tombstone_horizon()) +
                              ", after this reader's position " + std::to_string(pos_));
    }
    sparse_ = true;
  }
  MoveTo(next->id);  // may release replaced segments: look it up again
  *seg = store_->FindSegment(segment_);
  return Status::OK();
}

void LogCursorImpl::AppendSparse(const Record& rec, std::string_view raw, std::string* out) {
  uint64_t prev = rec.lsn - 1, history = 0;
  if (rec.type == RecordType::kGap) DecodeGapValue(rec.value, &prev, &history);
  if (prev == pos_) {
    out->append(raw);
  } else if (rec.type == RecordType::kGap) {
    // The log's own gap record, continuing from an LSN before the hole.
    const std::string value = EncodeGapValue(pos_, history);
    EncodeRecord(Record{rec.lsn, RecordType::kGap, {}, value}, out);
  } else {
    const std::string value = EncodeGapValue(pos_, store_->HistoryAt(rec.lsn));
    EncodeRecord(Record{rec.lsn - 1, RecordType::kGap, {}, value}, out);
    out->append(raw);
  }
  pos_ = rec.lsn;
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
      offset_ = reader.offset();
      if (sparse_) {
        AppendSparse(rec, raw, out);
        sparse_ = seg->compacted;  // from the dense log on, LSNs follow again
      } else {
        Status hole = CheckFollows(rec, seg->path, off);
        if (!hole.ok()) return hole;
        out->append(raw);
        pos_ = rec.lsn;
      }
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
  if (after_lsn < manifest_.tombstone_horizon) {
    return Status::NotFound(
        "a compaction dropped tombstones up to LSN " + std::to_string(manifest_.tombstone_horizon) +
        ": the log cannot give every effect after LSN " + std::to_string(after_lsn));
  }
  bool compacted = false;
  for (const Segment& s : segments_) compacted |= s.compacted && !s.obsolete;
  // Inside the compacted range the cursor returns the live records (see the
  // top of the file). Elsewhere, the oldest record of the writer's log:
  // records before it are not in this log (the store began from a later LSN).
  if (!compacted || after_lsn + 1 >= manifest_.log_start) {
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
  }
  auto c = std::make_unique<LogCursorImpl>(this, after_lsn);
  c->Anchor();
  *cursor = std::move(c);
  return Status::OK();
}

}  // namespace distkv::storage
