// StoreImpl's group commit: TakeBatch hands the staged records to a
// WriteBatch that another thread writes and syncs; FinishBatch, back on the
// owner's thread, publishes what became durable or rolls the staged state
// back to what is on disk (a failed sync turns the store read-only). Staging
// and reads are in store.cc.
#include "storage/store_impl.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "storage/compaction.h"
#include "storage/file_util.h"
#include "storage/write_batch.h"

namespace distkv::storage {

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
    const bool sealed = s.id != active_id_;
    if (!chunk && s.synced && !(sealed && s.allocated > s.written)) continue;
    BatchFile f;
    f.segment = s.id;
    f.path = s.path;
    f.fd = s.fd;
    f.offset = s.written;
    if (chunk) {
      assert(chunk->offset == s.written);
      MarkWrite(chunk->bytes.get());
      f.data = chunk->bytes;
      b->bytes_ += chunk->bytes->size();
    }
    const uint64_t data_end = s.written + (chunk ? chunk->bytes->size() : 0);
    if (sealed) {
      f.trim = s.allocated > data_end;  // no pre-allocated space in a sealed segment
    } else if (options_.fsync == FsyncMode::kAlways && data_end > s.allocated) {
      f.zero_from = data_end;
      f.zero_to = std::min(data_end + kPreallocateBytes, std::max(options_.segment_bytes, data_end));
    }
    f.sync = sealed || sync_active;
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
  staged_ = UnsyncedBatch{};
  in_flight_ = true;
  return b;
}

// Clears the "write continues" bit on the last record of a write and sets it
// on the others (record_format.h, Writes). Records this store encoded have it
// set already; a replica's come as the primary's writes marked them.
void StoreImpl::MarkWrite(std::string* bytes) {
  char* p = bytes->data();
  uint64_t left = bytes->size();
  while (left > 0) {
    uint64_t total = 0;
    Status s = CheckRecordHeader(std::string_view(p, left), &total);
    assert(s.ok() && total <= left);  // we staged these bytes ourselves
    if (!s.ok() || total > left) return;
    SetWriteContinues(p, total, total < left);
    p += total;
    left -= total;
  }
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
  if (f.trim) s->allocated = s->written;
  s->allocated = std::max({s->allocated, s->written, f.zero_to});
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
    inflight_ = UnsyncedBatch{};
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
  staged_ = UnsyncedBatch{};

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
    inflight_ = UnsyncedBatch{};
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
  inflight_ = UnsyncedBatch{};
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
      // Cut whatever part of the batch reached the file (and any space
      // pre-allocated after it: the next batch fills again).
      if (int err = io_->Truncate(s.fd, s.written)) {
        undo = Status::FromErrno(err, "truncate " + s.path + " after a failed batch");
      } else {
        s.allocated = s.written;
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
void StoreImpl::Rollback(UnsyncedBatch* p, size_t keep) {
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

}  // namespace distkv::storage
