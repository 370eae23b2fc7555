// StoreImpl: staging, group commit, rollback and reads. Opening and recovery
// are in store_recovery.cc, the log cursor in log_cursor.cc.
#include "storage/store_impl.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>

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
    : options_(options), last_sync_(std::chrono::steady_clock::now()) {}

StoreImpl::~StoreImpl() {
  // A batch in flight still uses our descriptors: the owner must finish it
  // first. Records merely staged are written (nobody was told they are
  // durable, but losing them on a clean close would surprise), and the
  // active segment is synced unless the mode leaves syncing to the OS.
  assert(!in_flight_);
  if (!in_flight_) {
    if (HasStaged()) Flush();
    if (options_.fsync != FsyncMode::kNever) {
      for (Segment& s : segments_) {
        if (!s.synced && s.fd >= 0) ::fdatasync(s.fd);
      }
    }
  }
  for (Segment& s : segments_) {
    if (s.fd >= 0) ::close(s.fd);
  }
  if (dir_fd_ >= 0) ::close(dir_fd_);
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

Status StoreImpl::CheckWritable() const { return broken_; }

// --- staging ----------------------------------------------------------------

Status StoreImpl::Stage(uint64_t lsn, RecordType type, std::string_view key,
                        std::string_view value) {
  const uint64_t size = EncodedRecordSize(key.size(), value.size());
  Segment* seg = &segments_.back();
  if (seg->end > 0 && seg->end + size > options_.segment_bytes) {
    // Seal: the record starts the next segment, whose file the batch that
    // first writes to it creates.
    if (seg->id >= kMaxSegmentId) return Status::InvalidArgument("segment ids exhausted");
    Segment next;
    next.id = seg->id + 1;
    next.path = JoinPath(options_.dir, SegmentFileName(next.id));
    segments_.push_back(std::move(next));
    seg = &segments_.back();
  }
  if (staged_.empty()) staged_.lsn_before = last_lsn_;
  if (staged_.chunks.empty() || staged_.chunks.back().segment != seg->id) {
    staged_.chunks.push_back(Chunk{seg->id, seg->end, std::make_shared<std::string>(), lsn, lsn});
  }
  Chunk& chunk = staged_.chunks.back();
  EncodeRecord(Record{lsn, type, key, value}, chunk.bytes.get());
  chunk.last_lsn = lsn;

  IndexEntry e;
  e.lsn = lsn;
  e.offset = seg->end;
  e.segment = seg->id;
  e.value_len = static_cast<uint32_t>(value.size());
  seg->end += size;
  total_bytes_ += size;

  Undo u{};
  if (type == RecordType::kPut) {
    u.had_old = index_.Put(key, e, &u.old);
    live_bytes_ += size;
  } else {
    u.had_old = index_.Erase(key, &u.old);
  }
  if (u.had_old) live_bytes_ -= RecordBytes(key, u.old);
  staged_.undo.push_back(u);
  last_lsn_ = lsn;
  return Status::OK();
}

Status StoreImpl::Put(std::string_view key, std::string_view value, uint64_t* lsn) {
  Status s = CheckKey(key);
  if (s.ok()) s = CheckValue(value);
  if (s.ok()) s = CheckWritable();
  if (!s.ok()) return s;
  s = Stage(last_lsn_ + 1, RecordType::kPut, key, value);
  if (s.ok() && lsn) *lsn = last_lsn_;
  return s;
}

Status StoreImpl::Remove(std::string_view key, uint64_t* lsn) {
  Status s = CheckKey(key);
  if (s.ok()) s = CheckWritable();
  if (!s.ok()) return s;
  IndexEntry e;
  if (!index_.Find(key, &e)) return Status::NotFound();
  s = Stage(last_lsn_ + 1, RecordType::kDelete, key, {});
  if (s.ok() && lsn) *lsn = last_lsn_;
  return s;
}

Status StoreImpl::Apply(uint64_t lsn, bool is_delete, std::string_view key,
                        std::string_view value) {
  Status s = CheckKey(key);
  if (s.ok()) s = CheckValue(value);
  if (s.ok() && is_delete && !value.empty()) s = Status::InvalidArgument("delete with a value");
  if (s.ok() && lsn <= last_lsn_) {
    s = Status::InvalidArgument("LSN " + std::to_string(lsn) + " is not above the last LSN " +
                                std::to_string(last_lsn_));
  }
  if (s.ok()) s = CheckWritable();
  if (!s.ok()) return s;
  return Stage(lsn, is_delete ? RecordType::kDelete : RecordType::kPut, key, value);
}

// --- group commit -------------------------------------------------------------

std::unique_ptr<WriteBatch> StoreImpl::TakeBatch(bool force_sync) {
  if (in_flight_ || !broken_.ok()) return nullptr;
  bool unsynced = false;
  for (const Segment& s : segments_) unsynced |= !s.synced;
  if (staged_.empty() && !(force_sync && unsynced)) return nullptr;

  const auto now = std::chrono::steady_clock::now();
  const bool sync_active =
      options_.fsync == FsyncMode::kAlways || force_sync ||
      (options_.fsync == FsyncMode::kEverySec && now - last_sync_ >= std::chrono::seconds(1));

  auto b = std::make_unique<WriteBatchImpl>(dir_fd_, &options_.fault_hook);
  // One entry per segment that has staged bytes or unsynced written bytes,
  // in segment order. Every segment but the newest is sealed: always synced.
  size_t next_chunk = 0;
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
    f.sync = (i + 1 < segments_.size()) || sync_active;
    b->files.push_back(std::move(f));
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
  inflight_ = std::move(staged_);
  staged_ = Pending{};
  in_flight_ = true;
  return b;
}

void StoreImpl::FinishBatch(std::unique_ptr<WriteBatch> batch, Status status) {
  auto* b = static_cast<WriteBatchImpl*>(batch.get());
  assert(in_flight_);
  in_flight_ = false;
  syncs_ += b->syncs_done;

  if (status.ok() && !b->ran) status = Status::InvalidArgument("batch finished without Run()");
  if (status.ok()) {
    for (BatchFile& f : b->files) {
      Segment* s = FindSegment(f.segment);
      if (f.created) s->fd = f.fd;
      if (f.data && !f.data->empty()) {
        s->written = f.offset + f.data->size();
        s->synced = f.sync;
      } else if (f.sync) {
        s->synced = true;
      }
      if (f.sync && f.segment == segments_.back().id) last_sync_ = std::chrono::steady_clock::now();
    }
    for (const Chunk& c : inflight_.chunks) {
      Segment* s = FindSegment(c.segment);
      if (s->first_lsn == 0) s->first_lsn = c.first_lsn;
      s->last_lsn = c.last_lsn;
    }
    if (b->records() > 0) {
      durable_lsn_ = b->last_lsn();
      batches_++;
      batch_records_ += b->records();
    }
    inflight_ = Pending{};
    return;
  }

  if (b->records() == 0) {
    // A failed sync of already-written bytes: nothing to undo, but say so.
    Log("sync failed: " + status.ToString());
    inflight_ = Pending{};
    return;
  }

  // Undo everything not yet durable, newest first.
  const size_t undone = staged_.undo.size() + inflight_.undo.size();
  const uint64_t lsn_before = inflight_.lsn_before;
  Rollback(&staged_);
  Rollback(&inflight_);
  staged_ = Pending{};
  inflight_ = Pending{};
  last_lsn_ = lsn_before;
  failed_batches_++;

  for (BatchFile& f : b->files) {
    if (f.created) {
      // Created by this batch: the segment never completed, remove it.
      ::close(f.fd);
      ::unlink(f.path.c_str());
    }
  }
  // Forget segments no completed batch created (they are at the back).
  while (segments_.size() > 1 && segments_.back().fd < 0) segments_.pop_back();
  total_bytes_ = 0;
  for (Segment& s : segments_) {
    if (s.end != s.written || s.id == segments_.back().id) {
      // Cut whatever part of the batch reached the file.
      if (s.fd >= 0 && ::ftruncate(s.fd, static_cast<off_t>(s.written)) != 0) {
        broken_ = Status::FromErrno(errno, "truncate " + s.path + " after a failed batch");
        Log(broken_.ToString());
      }
    }
    s.end = s.written;
    total_bytes_ += s.end;
  }
  Log("batch of " + std::to_string(b->records()) + " records (LSN " +
      std::to_string(b->first_lsn()) + "-" + std::to_string(b->last_lsn()) +
      ") failed: " + status.ToString() + "; rolled back " + std::to_string(undone) + " records");
}

void StoreImpl::Rollback(Pending* p) {
  std::vector<Record> records;
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
      buf.remove_prefix(n);
    }
  }
  assert(records.size() == p->undo.size());
  for (size_t i = std::min(records.size(), p->undo.size()); i-- > 0;) {
    const Record& r = records[i];
    const Undo& u = p->undo[i];
    if (r.type == RecordType::kPut) {
      live_bytes_ -= EncodedRecordSize(r.key.size(), r.value.size());
      if (!u.had_old) index_.Erase(r.key);
    }
    if (u.had_old) {
      index_.Put(r.key, u.old);
      live_bytes_ += RecordBytes(r.key, u.old);
    }
  }
}

Status StoreImpl::Flush() {
  if (in_flight_) return Status::Busy("a batch is in flight");
  while (HasStaged()) {
    std::unique_ptr<WriteBatch> b = TakeBatch(false);
    if (!b) return broken_.ok() ? Status::OK() : broken_;
    Status s = b->Run();
    FinishBatch(std::move(b), s);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

// --- reads ---------------------------------------------------------------------

Status StoreImpl::ReadValue(std::string_view key, const IndexEntry& e, std::string* value) const {
  const Segment* seg = FindSegment(e.segment);
  if (!seg)
    return Status::Corruption("index points at missing segment " + std::to_string(e.segment));
  const uint64_t value_off = e.offset + kRecordHeaderBytes + key.size();
  if (e.offset < seg->written) {
    value->resize(e.value_len);
    return PreadExact(seg->fd, value->data(), e.value_len, value_off, seg->path);
  }
  // Not on file yet: the record is in the batch in flight or still staged.
  for (const Pending* p : {&inflight_, &staged_}) {
    for (const Chunk& c : p->chunks) {
      if (c.segment == e.segment && e.offset >= c.offset && e.offset < c.offset + c.bytes->size()) {
        value->assign(c.bytes->data() + (value_off - c.offset), e.value_len);
        return Status::OK();
      }
    }
  }
  return Status::Corruption("index points past the log in segment " + seg->path);
}

Status StoreImpl::Get(std::string_view key, std::string* value, uint64_t* lsn) {
  IndexEntry e;
  if (!index_.Find(key, &e)) return Status::NotFound();
  Status s = ReadValue(key, e, value);
  if (s.ok() && lsn) *lsn = e.lsn;
  return s;
}

Status StoreImpl::Lookup(std::string_view key, uint64_t* lsn) {
  IndexEntry e;
  if (!index_.Find(key, &e)) return Status::NotFound();
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

StoreStats StoreImpl::Stats() const {
  StoreStats st;
  st.keys = index_.size();
  st.live_bytes = live_bytes_;
  st.dead_bytes = total_bytes_ - live_bytes_;
  st.segments = segments_.size();
  st.last_lsn = last_lsn_;
  st.durable_lsn = durable_lsn_;
  st.batches = batches_;
  st.batch_records = batch_records_;
  st.syncs = syncs_;
  st.index_bytes = index_.MemoryBytes();
  st.failed_batches = failed_batches_;
  return st;
}

}  // namespace distkv::storage
