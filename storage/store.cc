// StoreImpl: staging, group commit, rollback and reads. Opening and recovery
// are in store_recovery.cc, the log cursor in log_cursor.cc.
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

uint64_t RecordBytes(std::string_view key, const IndexEntry& e) {
  return EncodedRecordSize(key.size(), e.value_len);
}

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
                        bool group_continues, uint64_t group_bytes, uint64_t expires_ms) {
  const uint64_t stored_value = StoredValueBytes(value.size(), expires_ms);
  const uint64_t size = EncodedRecordSize(key.size(), stored_value);
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
  Record rec;
  rec.lsn = lsn;
  rec.type = type;
  rec.group_continues = group_continues;
  rec.key = key;
  rec.value = value;
  rec.expires_ms = expires_ms;
  EncodeRecord(rec, chunk.bytes.get());
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

Status StoreImpl::Apply(const Record& r) {
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
    s = Stage(r.lsn, RecordType::kGap, {}, r.value);
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
  return Stage(r.lsn, r.type, r.key, r.value, r.group_continues, 0, r.expires_ms);
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

// --- group commit -------------------------------------------------------------

std::unique_ptr<WriteBatch> StoreImpl::TakeBatch(bool force_sync) {
  if (in_flight_ || !read_only_.ok()) return nullptr;
  bool unsynced = false;
  for (const Segment& s : segments_) unsynced |= !s.synced;
  if (staged_.empty() && !(force_sync && unsynced)) return nullptr;

  const auto now = std::chrono::steady_clock::now();
  const bool sync_active =
      options_.fsync == FsyncMode::kAlways || force_sync ||
      (options_.fsync == FsyncMode::kEverySec && now - last_sync_ >= std::chrono::seconds(1));

  auto b = std::make_unique<WriteBatchImpl>(io_, options_.dir, dir_fd_, &options_.fault_hook);
  // One entry per segment that has staged bytes or unsynced written bytes,
  // in segment order. Every segment but the active one is sealed: always
  // synced (compacted segments never have staged bytes).
  size_t next_chunk = 0;
  const BatchFile* created = nullptr;
  uint64_t created_first_lsn = 0;
  for (size_t i = 0; i < segments_.size(); i++) {
    const Segment& s = segments_[i];
    const Chunk* chunk = nullptr;
    if (next_chunk < staged_.chunks.size() && staged_.chunks[next_chunk].segment == s.id) {
      chunk = &staged_.chunks[next_chunk++];
    }
    if (!chunk && s.synced) continue;
    BatchFile f;
    f.segment = s.id;
    f.path = s.path;
    f.fd = s.fd;
    f.offset = s.written;
    if (chunk) {
      assert(chunk->offset == s.written);
      f.data = chunk->bytes;
      b->bytes_ += chunk->bytes->size();
    }
    f.sync = s.id != active_id_ || sync_active;
    b->files.push_back(std::move(f));
    if (s.fd < 0 && chunk) {
      created = &b->files.back();
      created_first_lsn = chunk->first_lsn;
    }
  }
  assert(next_chunk == staged_.chunks.size());
  b->records_ = staged_.undo.size();
  if (b->records_ > 0) {
    b->first_lsn_ = staged_.chunks.front().first_lsn;
    b->last_lsn_ = last_lsn_;
  } else {
    b->first_lsn_ = durable_lsn_ + 1;
    b->last_lsn_ = durable_lsn_;
  }
  // The MANIFEST follows the data when a segment is created (so a deleted
  // newest segment is noticed), when the LSN reservation is half used, and
  // when the history changed.
  const bool reserve = last_lsn_ + kLsnReservation / 2 > persisted_hw_;
  if (created || reserve || manifest_gen_ != persisted_gen_) {
    Manifest m = manifest_;
    m.clean = false;
    m.open_mode = options_.fsync;
    m.high_water = reserve ? last_lsn_ + kLsnReservation : persisted_hw_;
    if (created) {
      m.active_segment = created->segment;
      m.active_first_lsn = created_first_lsn;
    }
    b->manifest = std::move(m);
    b->manifest_gen = manifest_gen_;
    b->manifest_writer = manifest_writer_.get();
  }
  inflight_ = std::move(staged_);
  staged_ = Pending{};
  in_flight_ = true;
  return b;
}

void StoreImpl::AdoptFile(const BatchFile& f) {
  Segment* s = FindSegment(f.segment);
  if (f.created) s->fd = f.fd;
  if (f.data && !f.data->empty()) {
    s->written = f.offset + f.data->size();
    s->synced = f.sync;
  } else if (f.sync) {
    s->synced = true;
  }
  if (f.sync && f.segment == active_id_) last_sync_ = std::chrono::steady_clock::now();
}

Status StoreImpl::FinishBatch(std::unique_ptr<WriteBatch> batch, Status status) {
  auto* b = static_cast<WriteBatchImpl*>(batch.get());
  assert(in_flight_);
  in_flight_ = false;
  syncs_ += b->syncs_done;

  if (status.ok() && !b->ran) status = Status::InvalidArgument("batch finished without Run()");
  if (status.ok()) {
    for (const BatchFile& f : b->files) AdoptFile(f);
    for (const Chunk& c : inflight_.chunks) {
      Segment* s = FindSegment(c.segment);
      if (s->first_lsn == 0) s->first_lsn = c.first_lsn;
      s->last_lsn = c.last_lsn;
    }
    if (b->manifest) {
      persisted_hw_ = b->manifest->high_water;
      manifest_.high_water = persisted_hw_;
      manifest_.active_segment = b->manifest->active_segment;
      manifest_.active_first_lsn = b->manifest->active_first_lsn;
      persisted_gen_ = b->manifest_gen;
    }
    if (b->records() > 0) {
      durable_lsn_ = b->last_lsn();
      batches_++;
      batch_records_ += b->records();
    }
    inflight_ = Pending{};
    if (swap_) ReleaseObsolete();
    return status;
  }

  // Every LSN staged so far is burned, whatever happens below: readers may
  // have seen them (ETags), so they must never name another record.
  lsn_floor_ = std::max(lsn_floor_, last_lsn_);
  failed_batches_++;
  // The next record starts a new group. A primary stages each group whole
  // into one batch, so none survives half; a replica re-applies from its
  // first undone record.
  staged_group_open_ = false;
  // The last LSN before this batch's records (or before the staged ones,
  // for a batch that only synced).
  const uint64_t lsn_before_batch = !inflight_.empty()
                                        ? inflight_.lsn_before
                                        : (!staged_.empty() ? staged_.lsn_before : last_lsn_);
  const size_t undone_staged = staged_.undo.size();
  Rollback(&staged_, 0);
  staged_ = Pending{};

  if (b->failure == WriteBatchImpl::Failure::kSync) {
    // fsyncgate: the files' state is unknown, and retrying the sync could
    // succeed over pages the kernel dropped. Keep what was written (its
    // writers are told it may or may not survive; under everysec/never it
    // is as durable as promised), undo what never reached a file, and
    // accept no more writes.
    size_t kept = 0;
    bool cut = false;
    for (const BatchFile& f : b->files) {
      if (!cut && (f.written || !f.data)) {
        AdoptFile(f);
      } else {
        cut = true;
        if (f.created) {
          io_->Close(f.fd);
          io_->Unlink(f.path);
        }
      }
    }
    uint64_t last_kept = lsn_before_batch;
    for (const Chunk& c : inflight_.chunks) {
      Segment* s = FindSegment(c.segment);
      if (s->written < c.offset + c.bytes->size()) break;
      if (s->first_lsn == 0) s->first_lsn = c.first_lsn;
      s->last_lsn = c.last_lsn;
      last_kept = c.last_lsn;
      kept += CountRecords(c);
    }
    Rollback(&inflight_, kept);
    inflight_ = Pending{};
    last_lsn_ = last_kept;
    // Under "always" the kept records are not durable: not for replicas either.
    if (options_.fsync != FsyncMode::kAlways) durable_lsn_ = last_kept;
    ForgetUncreatedSegments();
    RecountTotal();
    read_only_ = Status::IOError("a sync failed (" + status.ToString() +
                                 "); the store accepts no writes until it is restarted, which "
                                 "recovers from what is on disk");
    Log(read_only_.ToString() + "; " + std::to_string(undone_staged) + " staged records undone");
    if (swap_) ReleaseObsolete();
    if (b->records() == 0 || options_.fsync != FsyncMode::kAlways) {
      return b->records() == 0 ? status : Status::OK();
    }
    return Status::IOError("the write may or may not be stored: " + status.ToString() +
                           "; the store is read-only until restarted");
  }

  // Undo everything not yet durable, newest first.
  Rollback(&inflight_, 0);
  inflight_ = Pending{};
  last_lsn_ = lsn_before_batch;

  // The undo must be as durable as what it undoes could be (the batch may
  // have synced its data before a later step failed): otherwise a crash
  // could bring back writes that were answered as failed. Newest first, so
  // that a crash in the middle leaves a prefix of the log: the files this
  // batch created go (and the directory is synced), then the older ones are
  // cut back.
  Status undo;
  bool removed = false;
  for (BatchFile& f : b->files) {
    if (f.created) {
      io_->Close(f.fd);
      io_->Unlink(f.path);
      removed = true;
    }
  }
  if (removed) undo = SyncDir(io_, dir_fd_, options_.dir);
  ForgetUncreatedSegments();
  for (Segment& s : segments_) {
    if (undo.ok() && (s.end != s.written || s.id == active_id_) && s.fd >= 0) {
      // Cut whatever part of the batch reached the file.
      if (int err = io_->Truncate(s.fd, s.written)) {
        undo = Status::FromErrno(err, "truncate " + s.path + " after a failed batch");
      } else {
        undo = SyncFile(io_, s.fd, s.path);
      }
    }
  }
  if (!undo.ok()) {
    read_only_ = Status::IOError("a failed batch could not be undone durably (" + undo.ToString() +
                                 "); the store accepts no writes until it is restarted");
    Log(read_only_.ToString());
  }
  RecountTotal();
  Log("batch of " + std::to_string(b->records()) + " records (LSN " +
      std::to_string(b->first_lsn()) + "-" + std::to_string(b->last_lsn()) +
      ") failed: " + status.ToString() + "; rolled back " +
      std::to_string(b->records() + undone_staged) + " records");
  if (swap_) ReleaseObsolete();
  return status;
}

// Forget segments no completed batch created (the writer's newest ones;
// compacted segments always have a file), but keep one active segment.
void StoreImpl::ForgetUncreatedSegments() {
  size_t writer = 0;
  for (const Segment& s : segments_) writer += !s.compacted && !s.obsolete;
  for (size_t i = segments_.size(); i-- > 0 && writer > 1;) {
    if (segments_[i].fd >= 0 || segments_[i].compacted) continue;
    segments_.erase(segments_.begin() + static_cast<ptrdiff_t>(i));
    writer--;
  }
  active_id_ = 0;
  for (const Segment& s : segments_) {
    if (!s.compacted && !s.obsolete) active_id_ = std::max(active_id_, s.id);
  }
}

void StoreImpl::RecountTotal() {
  total_bytes_ = 0;
  for (Segment& s : segments_) {
    s.end = s.written;
    total_bytes_ += s.end;
  }
}

size_t StoreImpl::CountRecords(const Chunk& c) {
  size_t n = 0;
  std::string_view buf(*c.bytes);
  while (!buf.empty()) {
    uint64_t total;
    if (!CheckRecordHeader(buf, &total).ok()) break;
    buf.remove_prefix(total);
    n++;
  }
  return n;
}

// Undoes the index changes of p's records from the keep-th on, newest first.
void StoreImpl::Rollback(Pending* p, size_t keep) {
  std::vector<Record> records;
  std::vector<uint32_t> record_segment;  // the segment each record went to
  records.reserve(p->undo.size());
  for (const Chunk& c : p->chunks) {
    std::string_view buf(*c.bytes);
    while (!buf.empty()) {
      Record r;
      size_t n;
      Status s = DecodeRecord(buf, &r, &n);
      assert(s.ok());  // we encoded these bytes ourselves
      if (!s.ok()) break;
      records.push_back(r);
      record_segment.push_back(c.segment);
      buf.remove_prefix(n);
    }
  }
  assert(records.size() == p->undo.size());
  for (size_t i = std::min(records.size(), p->undo.size()); i-- > keep;) {
    const Record& r = records[i];
    const Undo& u = p->undo[i];
    if (r.type == RecordType::kGap) continue;
    if (r.type == RecordType::kPut) {
      const uint64_t size = EncodedRecordSize(r);
      live_bytes_ -= size;
      SubLive(record_segment[i], size);
      if (!u.had_old) index_.Erase(r.key);
    }
    expiry_.Set(r.key, u.old_expires);
    if (u.had_old) {
      // The displaced record may have been moved by a compaction since.
      const IndexEntry old = Relocate(r.key, u.old);
      index_.Put(r.key, old);
      live_bytes_ += RecordBytes(r.key, old);
      AddLive(old.segment, RecordBytes(r.key, old));
    }
  }
}

Status StoreImpl::Flush() {
  if (in_flight_) return Status::Busy("a batch is in flight");
  while (HasStaged()) {
    std::unique_ptr<WriteBatch> b = TakeBatch(false);
    if (!b) return read_only_.ok() ? Status::OK() : read_only_;
    Status s = b->Run();
    Status told = FinishBatch(std::move(b), s);
    if (!s.ok()) return told.ok() ? s : told;
  }
  return Status::OK();
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
  for (const Pending* p : {&inflight_, &staged_}) {
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
