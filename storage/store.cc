// StoreImpl: staging, histories and reads. Group commit and rollback are in
// store_commit.cc, opening and recovery in store_recovery.cc, the log cursor
// in log_cursor.cc.
#include "storage/store_impl.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "storage/compaction.h"
#include "storage/file_util.h"
#include "storage/write_batch.h"

namespace distkv::storage {

namespace {

constexpr uint64_t kMaxSegmentId = 0xFFFFFFFFull;

Status CheckKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("empty key");
  if (key.size() > kMaxKeyBytes) return Status::InvalidArgument("key longer than 64 KiB");
  return Status::OK();
}

Status CheckValue(std::string_view value) {
  if (value.size() > kMaxValueBytes) return Status::InvalidArgument("value of 4 GiB or more");
  return Status::OK();
}

}  // namespace

Status Store::Open(const Options& options, std::unique_ptr<Store>* store) {
  if (options.dir.empty()) return Status::InvalidArgument("Options::dir is empty");
  if (options.segment_bytes == 0 || options.segment_bytes >= kMaxIndexOffset / 2) {
    return Status::InvalidArgument("Options::segment_bytes must be in [1, 256 GiB)");
  }
  auto impl = std::make_unique<StoreImpl>(options);
  Status s = impl->Init();
  if (!s.ok()) return s;
  *store = std::move(impl);
  return Status::OK();
}

StoreImpl::StoreImpl(const Options& options)
    : options_(options),
      io_(options.io ? options.io : Io::Posix()),
      index_(options.index_hash_seed.value_or(KeyIndex::ProcessSeed())),
      last_sync_(std::chrono::steady_clock::now()) {}

StoreImpl::~StoreImpl() {
  // A batch in flight still uses our descriptors: the owner must finish it
  // first.
  assert(!in_flight_);
  if (!in_flight_ && opened_) CloseCleanly();  // a failed Open writes nothing
  for (Segment& s : segments_) {
    if (s.fd >= 0) io_->Close(s.fd);
  }
  if (dir_fd_ >= 0) io_->Close(dir_fd_);
  if (lock_fd_ >= 0) io_->Close(lock_fd_);  // releases the lock
}

// Records merely staged are written (nobody was told they are durable, but
// losing them on a clean close would surprise), every segment is synced, and
// the MANIFEST records the exact high-water mark: the next open then knows
// that every LSN up to it must be in the log.
void StoreImpl::CloseCleanly() {
  if (!read_only_.ok()) return;  // after a failed sync, nothing here can be trusted
  if (HasStaged() && !Flush().ok()) return;
  for (Segment& s : segments_) {
    if (s.allocated > s.written && s.fd >= 0) {
      // The pre-allocated space goes: the files of a closed store hold records alone.
      if (io_->Truncate(s.fd, s.written) != 0) return;
      s.allocated = s.written;
      s.synced = false;
    }
    if (!s.synced && s.fd >= 0) {
      if (!SyncFile(io_, s.fd, s.path).ok()) return;
      s.synced = true;
    }
  }
  Manifest m = manifest_;
  if (lsn_floor_ > last_lsn_ || need_gap_) {
    // LSNs were burned and no gap record marks them yet: the log does not
    // hold every LSN up to the high-water mark, so do not claim it does. The
    // next open jumps past them as after a crash, without losing a history
    // (nothing unsynced was acknowledged: everything is synced now).
    m.clean = false;
    m.open_mode = FsyncMode::kAlways;
    m.high_water = std::max(persisted_hw_, lsn_floor_);
  } else {
    m.clean = true;
    m.high_water = last_lsn_;
  }
  Status s = manifest_writer_->Update(m, CopyWriterFields);
  if (!s.ok()) Log("could not record the clean close in the MANIFEST: " + s.ToString());
}

void StoreImpl::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

Segment* StoreImpl::FindSegment(uint32_t id) {
  auto it = std::lower_bound(segments_.begin(), segments_.end(), id,
                             [](const Segment& s, uint32_t v) { return s.id < v; });
  return (it != segments_.end() && it->id == id) ? &*it : nullptr;
}

const Segment* StoreImpl::FindSegment(uint32_t id) const {
  return const_cast<StoreImpl*>(this)->FindSegment(id);
}

Status StoreImpl::CheckWritable() const { return read_only_; }

// --- staging ----------------------------------------------------------------

Status StoreImpl::Stage(uint64_t lsn, RecordType type, std::string_view key, std::string_view value,
                        bool group_continues, uint64_t group_bytes, uint64_t expires_ms,
                        std::string_view encoded) {
  const uint64_t stored_value = StoredValueBytes(value.size(), expires_ms);
  const uint64_t size = EncodedRecordSize(key.size(), stored_value);
  if (!encoded.empty() && encoded.size() != size) {
    return Status::InvalidArgument("encoded record of " + std::to_string(encoded.size()) +
                                   " bytes for a record of " + std::to_string(size));
  }
  Segment* seg = Active();
  // A group's later records never seal: the group stays in one segment.
  const uint64_t needed = group_bytes ? group_bytes : size;
  const bool in_group = group_bytes == 0 && staged_group_open_;
  if (!in_group && seg->end > 0 && seg->end + needed > options_.segment_bytes) {
    // Seal: the record starts the next segment, whose file the batch that
    // first writes to it creates. Its id is above every id in use, so the
    // vector stays sorted.
    if (next_segment_id_ > kMaxSegmentId) return Status::InvalidArgument("segment ids exhausted");
    Segment next;
    next.id = static_cast<uint32_t>(next_segment_id_++);
    next.path = JoinPath(options_.dir, SegmentFileName(next.id));
    segments_.push_back(std::move(next));
    seg = &segments_.back();
    active_id_ = seg->id;
  }
  if (staged_.empty()) staged_.lsn_before = last_lsn_;
  if (staged_.chunks.empty() || staged_.chunks.back().segment != seg->id) {
    staged_.chunks.push_back(Chunk{seg->id, seg->end, std::make_shared<std::string>(), lsn, lsn});
  }
  Chunk& chunk = staged_.chunks.back();
  if (!encoded.empty()) {
    chunk.bytes->append(encoded);
  } else {
    Record rec;
    rec.lsn = lsn;
    rec.type = type;
    rec.group_continues = group_continues;
    // Set on every record: TakeBatch clears it on the last of each write,
    // the one record whose CRC it then changes.
    rec.write_continues = true;
    rec.key = key;
    rec.value = value;
    rec.expires_ms = expires_ms;
    EncodeRecord(rec, chunk.bytes.get());
  }
  staged_group_open_ = group_continues;
  chunk.last_lsn = lsn;

  IndexEntry e;
  e.lsn = lsn;
  e.offset = seg->end;
  e.segment = seg->id;
  e.value_len = static_cast<uint32_t>(stored_value);
  seg->end += size;
  total_bytes_ += size;

  Undo u{};
  if (type == RecordType::kPut) {
    u.had_old = index_.Put(key, e, &u.old);
    live_bytes_ += size;
    seg->live += size;
  } else if (type == RecordType::kDelete) {
    u.had_old = index_.Erase(key, &u.old);
  }
  if (type != RecordType::kGap) {
    u.old_expires = expiry_.Get(key);
    expiry_.Set(key, expires_ms);
  }
  if (u.had_old) {
    live_bytes_ -= RecordBytes(key, u.old);
    SubLive(u.old.segment, RecordBytes(key, u.old));
  }
  staged_.undo.push_back(u);
  last_lsn_ = lsn;
  return Status::OK();
}

// Before the first write after LSNs were burned (or a new history began),
// a gap record takes the next unused LSN and says where the log continues
// from.
Status StoreImpl::StageGapIfNeeded() {
  if (!need_gap_ && lsn_floor_ <= last_lsn_) return Status::OK();
  const uint64_t lsn = std::max(lsn_floor_, last_lsn_) + 1;
  if (lsn + 1 > persisted_hw_) {
    return Status::Busy("no LSN reserved yet; retry when the batch in flight completes");
  }
  Status s = Stage(lsn, RecordType::kGap, {}, EncodeGapValue(last_lsn_, history_id()));
  if (s.ok()) need_gap_ = false;
  return s;
}

Status StoreImpl::Put(std::string_view key, std::string_view value, uint64_t* lsn,
                      uint64_t expires_ms) {
  Status s = CheckKey(key);
  if (s.ok()) s = CheckValue(value);
  if (s.ok()) s = CheckWritable();
  if (s.ok()) s = StageGapIfNeeded();
  if (s.ok() && last_lsn_ + 1 > persisted_hw_) {
    s = Status::Busy("no LSN reserved yet; retry when the batch in flight completes");
  }
  if (!s.ok()) return s;
  s = Stage(last_lsn_ + 1, RecordType::kPut, key, value, false, 0, expires_ms);
  if (s.ok() && lsn) *lsn = last_lsn_;
  return s;
}

Status StoreImpl::Remove(std::string_view key, uint64_t* lsn) {
  Status s = CheckKey(key);
  if (s.ok()) s = CheckWritable();
  if (!s.ok()) return s;
  IndexEntry e;
  if (!index_.Find(key, &e)) return Status::NotFound();
  s = StageGapIfNeeded();
  if (s.ok() && last_lsn_ + 1 > persisted_hw_) {
    s = Status::Busy("no LSN reserved yet; retry when the batch in flight completes");
  }
  if (!s.ok()) return s;
  s = Stage(last_lsn_ + 1, RecordType::kDelete, key, {});
  if (s.ok() && lsn) *lsn = last_lsn_;
  return s;
}

Status StoreImpl::PutAtomic(const std::vector<std::pair<std::string_view, std::string_view>>& pairs,
                            std::vector<uint64_t>* lsns) {
  if (pairs.empty()) return Status::InvalidArgument("empty group");
  Status s = CheckWritable();
  uint64_t bytes = 0;
  for (const auto& [key, value] : pairs) {
    if (s.ok()) s = CheckKey(key);
    if (s.ok()) s = CheckValue(value);
    bytes += EncodedRecordSize(key.size(), value.size());
  }
  if (s.ok()) s = StageGapIfNeeded();
  if (s.ok() && last_lsn_ + pairs.size() > persisted_hw_) {
    s = Status::Busy("no LSN reserved yet; retry when the batch in flight completes");
  }
  if (!s.ok()) return s;
  lsns->clear();
  for (size_t i = 0; i < pairs.size(); ++i) {
    s = Stage(last_lsn_ + 1, RecordType::kPut, pairs[i].first, pairs[i].second,
              /*group_continues=*/i + 1 < pairs.size(), i == 0 ? bytes : 0);
    if (!s.ok()) return s;  // only the first record can fail (sealing), before any is staged
    lsns->push_back(last_lsn_);
  }
  return Status::OK();
}

Status StoreImpl::Apply(uint64_t lsn, bool is_delete, std::string_view key,
                        std::string_view value) {
  return Apply(Record{lsn, is_delete ? RecordType::kDelete : RecordType::kPut, key, value});
}

Status StoreImpl::Apply(const Record& r) { return ApplyEncoded(r, {}); }

// A record's encoding is canonical (one byte string per record: every header
// field and type bit is decoded, none ignored), so appending the received
// bytes writes exactly what encoding the record again would.
Status StoreImpl::ApplyEncoded(const Record& r, std::string_view encoded) {
  Status s = CheckWritable();
  if (!s.ok()) return s;
  if (r.type == RecordType::kGap) {
    uint64_t prev, history;
    DecodeGapValue(r.value, &prev, &history);
    if (r.value.size() != kGapValueBytes || history == 0 || r.lsn <= prev) {
      return Status::InvalidArgument("malformed gap record at LSN " + std::to_string(r.lsn));
    }
    if (prev != last_lsn_) {
      return Status::InvalidArgument("gap record at LSN " + std::to_string(r.lsn) +
                                     " continues from LSN " + std::to_string(prev) +
                                     ", but the last LSN here is " + std::to_string(last_lsn_));
    }
    s = Stage(r.lsn, RecordType::kGap, {}, r.value, false, 0, 0, encoded);
    if (s.ok() && history != history_id()) {
      manifest_.histories.push_back(HistoryEntry{history, r.lsn, prev});
      if (manifest_.histories.size() > kMaxHistories) {
        manifest_.histories.erase(manifest_.histories.begin());
      }
      manifest_gen_++;
    }
    return s;
  }
  s = CheckKey(r.key);
  if (s.ok()) s = CheckValue(r.value);
  if (s.ok() && r.type == RecordType::kDelete && !r.value.empty()) {
    s = Status::InvalidArgument("delete with a value");
  }
  if (s.ok() && r.lsn != last_lsn_ + 1) {
    s = Status::InvalidArgument("LSN " + std::to_string(r.lsn) + " does not follow the last LSN " +
                                std::to_string(last_lsn_) + " (LSNs " +
                                (r.lsn > last_lsn_ ? std::to_string(last_lsn_ + 1) + "-" +
                                                         std::to_string(r.lsn - 1) + " missing)"
                                                   : "must increase)"));
  }
  if (!s.ok()) return s;
  if (r.type == RecordType::kDelete && r.expires_ms != 0) {
    return Status::InvalidArgument("delete with an expiry");
  }
  return Stage(r.lsn, r.type, r.key, r.value, r.group_continues, 0, r.expires_ms, encoded);
}

// --- histories ------------------------------------------------------------------

// A history's entries are oldest first; one whose start is above the LSN
// asked about covers no record at or below it (a history a crash began
// before any record of it was written).
uint64_t StoreImpl::HistoryAt(uint64_t lsn) const {
  const std::vector<HistoryEntry>& h = manifest_.histories;
  for (size_t i = h.size(); i-- > 0;) {
    if (h[i].start_lsn <= lsn) return h[i].id;
  }
  return h.front().id;
}

bool StoreImpl::SharesHistory(uint64_t id, uint64_t lsn, uint64_t* fork_lsn) const {
  *fork_lsn = 0;
  if (lsn == 0) return true;  // nothing to disagree about
  const std::vector<HistoryEntry>& h = manifest_.histories;
  for (size_t i = 0; i < h.size(); i++) {
    if (h[i].id != id) continue;
    // History i runs up to where the next one says it left it.
    const uint64_t end = i + 1 < h.size() ? h[i + 1].prev_end_lsn : durable_lsn_;
    *fork_lsn = std::min(end, durable_lsn_);
    return lsn <= *fork_lsn;
  }
  return false;
}

void StoreImpl::AdoptHistory(uint64_t id) {
  // Histories this store began and wrote nothing in (a crash under
  // "everysec") are not the primary's: they go.
  std::vector<HistoryEntry>& h = manifest_.histories;
  while (h.size() > 1 && h.back().start_lsn > last_lsn_) h.pop_back();
  if (h.back().id == id) return;
  if (h.size() == 1 && h.back().start_lsn > last_lsn_) h.clear();
  h.push_back(HistoryEntry{id, last_lsn_ + 1, last_lsn_});
  if (h.size() > kMaxHistories) h.erase(h.begin());
  manifest_gen_++;
}

void StoreImpl::BeginHistory() {
  std::vector<HistoryEntry>& h = manifest_.histories;
  h.push_back(HistoryEntry{NewHistoryId(), last_lsn_ + 1, last_lsn_});
  if (h.size() > kMaxHistories) h.erase(h.begin());
  manifest_gen_++;
}

// --- reads ---------------------------------------------------------------------

// A read takes the whole record in one pread and checks its CRC, key and
// LSN: damage on disk becomes an error naming the file and offset, never
// wrong bytes. The record is read into *value and its head cut off.
Status StoreImpl::ReadValue(std::string_view key, const IndexEntry& e, std::string* value,
                            uint64_t* expires_ms) const {
  const Segment* seg = FindSegment(e.segment);
  if (!seg) {
    return Status::Corruption("index points at missing segment " + std::to_string(e.segment));
  }
  if (e.offset < seg->written) {
    const uint64_t total = EncodedRecordSize(key.size(), e.value_len);
    value->resize(total);
    Status s = PreadExact(io_, seg->fd, value->data(), total, e.offset, seg->path);
    Record r;
    size_t n;
    if (s.ok()) s = DecodeRecord(*value, &r, &n);
    if (s.ok() && (r.lsn != e.lsn || r.key != key || n != total)) {
      s = Status::Corruption("record does not match the index");
    }
    if (!s.ok()) {
      value->clear();
      if (s.IsIOError()) return s;
      return Status::Corruption("bad record in " + seg->path + " at offset " +
                                std::to_string(e.offset) + " (key of " +
                                std::to_string(key.size()) + " bytes, LSN " +
                                std::to_string(e.lsn) + "): " + std::string(s.message()));
    }
    if (expires_ms) *expires_ms = r.expires_ms;
    value->erase(0, total - r.value.size());  // the header, key and expiry
    return Status::OK();
  }
  // Not on file yet: the record is in the batch in flight or still staged.
  for (const UnsyncedBatch* p : {&inflight_, &staged_}) {
    for (const Chunk& c : p->chunks) {
      if (c.segment == e.segment && e.offset >= c.offset && e.offset < c.offset + c.bytes->size()) {
        Record r;
        size_t n;
        Status s = DecodeRecord(std::string_view(*c.bytes).substr(e.offset - c.offset), &r, &n);
        if (!s.ok()) return s;  // we encoded these bytes ourselves
        value->assign(r.value);
        if (expires_ms) *expires_ms = r.expires_ms;
        return Status::OK();
      }
    }
  }
  return Status::Corruption("index points past the log in segment " + seg->path);
}

bool StoreImpl::Expired(std::string_view key) const {
  if (expiry_.size() == 0 || !clock_) return false;
  const uint64_t expires = expiry_.Get(key);
  if (expires == 0) return false;
  const uint64_t now = clock_();
  return now != 0 && expires <= now;
}

void StoreImpl::ExpiredKeys(size_t max, std::vector<std::string>* keys) const {
  const uint64_t now = clock_ ? clock_() : 0;
  if (now != 0) expiry_.Due(now, max, keys);
}

Status StoreImpl::Get(std::string_view key, std::string* value, uint64_t* lsn,
                      uint64_t* expires_ms) {
  IndexEntry e;
  if (!index_.Find(key, &e) || Expired(key)) return Status::NotFound();
  Status s = ReadValue(key, e, value, expires_ms);
  if (s.ok() && lsn) *lsn = e.lsn;
  return s;
}

Status StoreImpl::Lookup(std::string_view key, uint64_t* lsn) {
  IndexEntry e;
  if (!index_.Find(key, &e) || Expired(key)) return Status::NotFound();
  *lsn = e.lsn;
  return Status::OK();
}

Status StoreImpl::ForEach(
    const std::function<void(std::string_view, std::string_view, uint64_t)>& fn) {
  Status result;
  std::string value;
  index_.ForEach([&](std::string_view key, const IndexEntry& e) {
    if (!result.ok()) return;
    result = ReadValue(key, e, &value);
    if (result.ok()) fn(key, value, e.lsn);
  });
  return result;
}

Status StoreImpl::Scan(const ScanOptions& options, ScanResult* result) {
  ScanPage page;
  std::function<bool(std::string_view)> match;
  if (!options.prefix.empty() || options.keep || expiry_.size() > 0) {
    match = [&](std::string_view key) {
      return key.starts_with(options.prefix) && (!options.keep || options.keep(key)) &&
             !Expired(key);
    };
  }
  index_.Scan(options.cursor, options.limit, options.max_slots, match, &page);
  result->entries.clear();
  result->entries.reserve(page.items.size());
  for (const ScanItem& it : page.items) {
    ScanResult::Entry out;
    out.key.assign(it.key);
    out.lsn = it.entry.lsn;
    if (options.values) {
      Status s = ReadValue(it.key, it.entry, &out.value);
      if (!s.ok()) return s;
    }
    result->entries.push_back(std::move(out));
  }
  result->next = page.next;
  result->end = page.end;
  return Status::OK();
}

void StoreImpl::ForEachKey(
    const std::function<void(std::string_view key, uint64_t lsn)>& fn) const {
  index_.ForEach([&](std::string_view key, const IndexEntry& e) { fn(key, e.lsn); });
}

StoreStats StoreImpl::Stats() const {
  StoreStats st;
  st.keys = index_.size();
  st.live_bytes = live_bytes_;
  st.dead_bytes = total_bytes_ - live_bytes_;
  for (const Segment& s : segments_) {
    if (s.obsolete) {
      st.pinned_segments++;
      // While the index is repointed they wait for that, not for readers.
      if (!swap_) st.pinned_bytes += s.written;
      continue;
    }
    st.segments++;
    st.hint_files += s.hinted;
    if (s.id != active_id_) {
      st.sealed_bytes += s.end;
      st.sealed_dead_bytes += s.end - std::min(s.end, s.live);
    }
  }
  st.compactions = compactions_;
  st.compactions_failed = compactions_failed_;
  st.bytes_reclaimed = bytes_reclaimed_;
  st.tombstone_horizon = manifest_.tombstone_horizon;
  st.compacting = compaction_job_ || swap_ != nullptr;
  st.last_lsn = last_lsn_;
  st.durable_lsn = durable_lsn_;
  st.batches = batches_;
  st.batch_records = batch_records_;
  st.syncs = syncs_;
  st.index_bytes = index_.MemoryBytes();
  st.failed_batches = failed_batches_;
  st.high_water_lsn = persisted_hw_;
  st.history_id = history_id();
  st.read_only = !read_only_.ok();
  st.keys_with_ttl = expiry_.size();
  return st;
}

}  // namespace distkv::storage
