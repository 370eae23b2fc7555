// Snapshots: the cursor that reads one (Store::NewSnapshot), the writer that
// builds one into a staging directory, and its installation at open. The
// mechanism is described in snapshot.h.
#include "storage/snapshot.h"

#include <errno.h>

#include <algorithm>

#include "storage/file_util.h"
#include "storage/record_format.h"
#include "storage/store_impl.h"

namespace distkv::storage {

namespace {

bool IsStoreFile(const std::string& name) {
  uint64_t id;
  if (ParseSegmentFileName(name, &id)) return true;
  if (name.ends_with(".hint")) return true;
  return name == kManifestFileName;
}

class SnapshotCursorImpl final : public SnapshotCursor {
 public:
  struct Entry {
    uint64_t key_at;
    uint32_t key_len;
    IndexEntry e;
  };

  SnapshotCursorImpl(const StoreImpl* store, uint64_t lsn, uint64_t failed_batches)
      : store_(store), lsn_(lsn), failed_batches_(failed_batches) {}
  ~SnapshotCursorImpl() override {
    for (size_t i = next_; i < entries_.size(); i++) LeaveSegment(i);
  }

  uint64_t lsn() const override { return lsn_; }
  uint64_t records() const override { return entries_.size(); }
  uint64_t bytes() const override { return bytes_; }
  uint64_t records_read() const override { return next_; }
  Status Next(std::string* out, size_t max_bytes, bool* done) override;

  // Called once the entries are collected: sorts them and pins their segments.
  void Prepare() {
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
      return a.e.segment != b.e.segment ? a.e.segment < b.e.segment : a.e.offset < b.e.offset;
    });
    for (size_t i = 0; i < entries_.size(); i++) {
      bytes_ += EncodedRecordSize(entries_[i].key_len, entries_[i].e.value_len);
      if (i == 0 || entries_[i].e.segment != entries_[i - 1].e.segment) {
        store_->Pin(entries_[i].e.segment);
      }
    }
  }

  std::vector<Entry> entries_;
  std::string keys_;

 private:
  static constexpr uint64_t kMaxGap = 64 << 10;

  // Unpins entry i's segment if it is the last entry of that segment.
  void LeaveSegment(size_t i) {
    if (i + 1 == entries_.size() || entries_[i + 1].e.segment != entries_[i].e.segment) {
      store_->Unpin(entries_[i].e.segment);
    }
  }

  const StoreImpl* store_;
  const uint64_t lsn_;
  const uint64_t failed_batches_;
  bool durable_ = false;
  uint64_t bytes_ = 0;
  std::string span_;  // the bytes of one read
  size_t next_ = 0;
};

Status SnapshotCursorImpl::Next(std::string* out, size_t max_bytes, bool* done) {
  *done = false;
  if (!durable_) {
    // A failed batch may have undone records the copied index points at.
    if (store_->failed_batch_count() != failed_batches_) {
      return Status::Busy("a failed write undid records of the snapshot at LSN " +
                          std::to_string(lsn_) + "; take another one");
    }
    if (store_->durable_lsn() < lsn_) return Status::OK();  // not durable yet: later
    durable_ = true;
  }
  size_t appended = 0;
  while (next_ < entries_.size() && (appended == 0 || appended < max_bytes)) {
    // One pread for a run of records of one segment that lie close together
    // (after a compaction the live records are contiguous); the dead bytes
    // between them, at most kMaxGap each, are read and skipped.
    const Entry& first = entries_[next_];
    const Segment* seg = store_->FindSegment(first.e.segment);
    if (!seg || seg->fd < 0) {
      return Status::Corruption("snapshot: segment " + std::to_string(first.e.segment) +
                                " is gone while pinned");
    }
    const uint64_t budget = std::max<uint64_t>(max_bytes > appended ? max_bytes - appended : 0, 1);
    const uint64_t start = first.e.offset;
    uint64_t end = start + EncodedRecordSize(first.key_len, first.e.value_len);
    size_t last = next_ + 1;
    for (; last < entries_.size(); last++) {
      const Entry& en = entries_[last];
      const uint64_t at = en.e.offset, size = EncodedRecordSize(en.key_len, en.e.value_len);
      if (en.e.segment != first.e.segment || at < end || at - end > kMaxGap ||
          at + size - start > budget) {
        break;
      }
      end = at + size;
    }
    span_.resize(end - start);
    Status s = PreadExact(store_->io(), seg->fd, span_.data(), span_.size(), start, seg->path);
    if (!s.ok()) return s;
    for (; next_ < last; next_++) {
      const Entry& en = entries_[next_];
      const std::string_view key(keys_.data() + en.key_at, en.key_len);
      const uint64_t total = EncodedRecordSize(key.size(), en.e.value_len);
      const std::string_view raw(span_.data() + (en.e.offset - start), total);
      Record r;
      size_t n = 0;
      s = DecodeRecord(raw, &r, &n);
      if (s.ok() && (r.lsn != en.e.lsn || r.key != key || n != total)) {
        s = Status::Corruption("the record does not match the index");
      }
      if (!s.ok()) {
        return Status::Corruption("snapshot: bad record in " + seg->path + " at offset " +
                                  std::to_string(en.e.offset) + ": " + std::string(s.message()));
      }
      out->append(raw);
      appended += total;
      LeaveSegment(next_);  // may release seg: it is not used after the last entry
    }
  }
  *done = next_ == entries_.size();
  return Status::OK();
}

}  // namespace

Status StoreImpl::NewSnapshot(const std::function<bool(std::string_view key)>& filter,
                              std::unique_ptr<SnapshotCursor>* cursor) {
  auto c = std::make_unique<SnapshotCursorImpl>(this, last_lsn_, failed_batches_);
  if (!filter) c->entries_.reserve(index_.size());
  index_.ForEach([&](std::string_view key, const IndexEntry& e) {
    if (e.deleted || (filter && !filter(key))) return;
    c->entries_.push_back({c->keys_.size(), static_cast<uint32_t>(key.size()), e});
    c->keys_.append(key);
  });
  c->Prepare();
  *cursor = std::move(c);
  return Status::OK();
}

// --- SnapshotWriter -------------------------------------------------------------

SnapshotWriter::SnapshotWriter(Io* io, std::string dir, uint64_t lsn, uint64_t history,
                               uint64_t segment_bytes)
    : io_(io),
      dir_(std::move(dir)),
      staging_(JoinPath(dir_, kStagingDirName)),
      lsn_(lsn),
      history_(history),
      segment_bytes_(segment_bytes) {}

SnapshotWriter::~SnapshotWriter() {
  if (fd_ >= 0) io_->Close(fd_);
  for (const ClosedSegment& c : closed_) {
    if (c.fd >= 0) io_->Close(c.fd);
  }
  if (staging_fd_ >= 0) io_->Close(staging_fd_);
  if (lock_fd_ >= 0) io_->Close(lock_fd_);  // the next attempt may begin
}

Status SnapshotWriter::Create(Io* io, const std::string& dir, uint64_t lsn, uint64_t history,
                              uint64_t segment_bytes, std::unique_ptr<SnapshotWriter>* out) {
  std::unique_ptr<SnapshotWriter> w(new SnapshotWriter(io, dir, lsn, history, segment_bytes));
  Status s = CreateDirs(io, w->staging_);
  if (!s.ok()) return s;
  // One attempt at a time: an earlier writer may still be finishing in
  // another thread (its replica was re-pointed meanwhile). Emptying the
  // directory under it would mix two snapshots into one COMPLETE list.
  const std::string lock = JoinPath(w->staging_, kStagingLockFileName);
  if (int err = io->Lock(lock, &w->lock_fd_)) {
    w->lock_fd_ = -1;
    if (err == EWOULDBLOCK || err == EAGAIN) {
      return Status::Busy("an earlier snapshot is still being written in " + w->staging_);
    }
    return Status::FromErrno(err, "lock " + lock);
  }
  std::vector<std::string> names;
  s = ListDir(io, w->staging_, &names);
  if (!s.ok()) return s;
  // COMPLETE first: a crash while the rest goes must not leave it beside a
  // half-emptied directory.
  if (std::find(names.begin(), names.end(), kStagingCompleteFileName) != names.end()) {
    io->Unlink(JoinPath(w->staging_, kStagingCompleteFileName));
  }
  for (const std::string& name : names) {
    if (name != kStagingLockFileName) io->Unlink(JoinPath(w->staging_, name));
  }
  if (int err = io->OpenDir(w->staging_, &w->staging_fd_)) {
    w->staging_fd_ = -1;
    return Status::FromErrno(err, "open " + w->staging_);
  }
  *out = std::move(w);
  return Status::OK();
}

Status SnapshotWriter::CloseSegment() {
  if (fd_ < 0) return Status::OK();
  // Synced by Finish: Add() runs on the replica's loop, which must not wait
  // for the disk.
  closed_.push_back(ClosedSegment{id_, fd_, hint_.Finish(size_)});
  fd_ = -1;
  segments_.push_back(CompactedSegment{id_, min_lsn_, max_lsn_});
  files_.push_back(SegmentFileName(id_));
  files_.push_back(HintFileName(id_));
  hint_.Clear();
  return Status::OK();
}

Status SnapshotWriter::Add(std::string_view records) {
  // The records bound for one segment are written with one pwrite.
  const char* run = nullptr;
  size_t run_len = 0;
  uint64_t run_at = 0;
  auto flush = [&]() {
    if (run_len == 0) return Status::OK();
    Status s = PwriteAll(io_, fd_, run, run_len, run_at, SegmentFileName(id_));
    run_len = 0;
    return s;
  };
  while (!records.empty()) {
    Record r;
    size_t n = 0;
    Status s = DecodeRecord(records, &r, &n);
    if (!s.ok()) return Status::Corruption("snapshot record: " + std::string(s.message()));
    if (r.type != RecordType::kPut || r.lsn == 0 || r.lsn > lsn_) {
      return Status::Corruption("snapshot record of LSN " + std::to_string(r.lsn) +
                                " is not a put at or below the snapshot's LSN " +
                                std::to_string(lsn_));
    }
    if (fd_ >= 0 && size_ + n > segment_bytes_) {
      s = flush();
      if (s.ok()) s = CloseSegment();
      if (!s.ok()) return s;
    }
    if (fd_ < 0) {
      id_++;
      const std::string path = JoinPath(staging_, SegmentFileName(id_));
      if (int err = io_->Open(path, Io::kCreate | Io::kTruncate, &fd_)) {
        fd_ = -1;
        return Status::FromErrno(err, "create " + path);
      }
      size_ = 0;
      min_lsn_ = max_lsn_ = r.lsn;
    }
    if (run_len == 0) {
      run = records.data();
      run_at = size_;
    }
    run_len += n;
    hint_.Add(r, size_);
    size_ += n;
    min_lsn_ = std::min(min_lsn_, r.lsn);
    max_lsn_ = std::max(max_lsn_, r.lsn);
    records_++;
    bytes_ += n;
    records.remove_prefix(n);
  }
  return flush();
}

Status SnapshotWriter::Finish() {
  Status s = CloseSegment();
  for (ClosedSegment& c : closed_) {
    const std::string path = JoinPath(staging_, SegmentFileName(c.id));
    if (s.ok()) s = SyncFile(io_, c.fd, path);
    io_->Close(c.fd);
    c.fd = -1;
    if (s.ok()) s = WriteFileAtomically(io_, staging_, HintFileName(c.id), c.hint, -1);
    std::string().swap(c.hint);
  }
  if (!s.ok()) return s;
  Manifest m;
  m.clean = true;  // high_water is exact: the store continues at lsn + 1
  m.high_water = lsn_;
  m.log_start = lsn_ + 1;
  m.tombstone_horizon = lsn_;  // every LSN up to the snapshot is summed up by it
  m.histories.push_back(HistoryEntry{history_, 1, 0});
  m.compacted = segments_;
  s = SyncDir(io_, staging_fd_, staging_);
  if (s.ok()) s = WriteManifest(io_, staging_, staging_fd_, m);
  if (!s.ok()) return s;
  files_.push_back(kManifestFileName);  // last: the install renames it last
  std::string list;
  for (const std::string& f : files_) list += f + "\n";
  return WriteFileAtomically(io_, staging_, kStagingCompleteFileName, list, staging_fd_);
}

void SnapshotWriter::Discard() {
  // COMPLETE first, as in Create: without it the files are never installed.
  io_->Unlink(JoinPath(staging_, kStagingCompleteFileName));
  if (staging_fd_ >= 0) io_->SyncDir(staging_fd_);
  std::vector<std::string> names;
  if (!ListDir(io_, staging_, &names).ok()) return;
  for (const std::string& name : names) {
    if (name != kStagingLockFileName) io_->Unlink(JoinPath(staging_, name));
  }
}

bool StagingInUse(Io* io, const std::string& dir) {
  int lock_fd = -1;
  const int err =
      io->Lock(JoinPath(JoinPath(dir, kStagingDirName), kStagingLockFileName), &lock_fd);
  if (err == 0) io->Close(lock_fd);
  return err == EWOULDBLOCK || err == EAGAIN;
}

Status CancelStaged(Io* io, const std::string& dir) {
  const std::string staging = JoinPath(dir, kStagingDirName);
  const std::string lock = JoinPath(staging, kStagingLockFileName);
  int lock_fd = -1;
  if (int err = io->Lock(lock, &lock_fd)) {
    if (err == ENOENT) return Status::OK();  // no staging directory: nothing staged
    if (err == EWOULDBLOCK || err == EAGAIN) {
      return Status::Busy("a snapshot is being written in " + staging);
    }
    return Status::FromErrno(err, "lock " + lock);
  }
  Status s;
  const std::string complete = JoinPath(staging, kStagingCompleteFileName);
  if (int err = io->Unlink(complete); err != 0 && err != ENOENT) {
    s = Status::FromErrno(err, "unlink " + complete);
  }
  io->Close(lock_fd);
  return s;
}

// --- installation ------------------------------------------------------------------

namespace {

// InstallStaged with staging/LOCK held.
Status InstallLocked(Io* io, const std::string& dir, int dir_fd, const std::string& staging,
                     const std::function<void(const std::string&)>& log) {
  std::vector<std::string> staged;
  Status s = ListDir(io, staging, &staged);
  if (!s.ok()) return s;
  auto is_staged = [&](const std::string& f) {
    return std::find(staged.begin(), staged.end(), f) != staged.end();
  };
  // INSTALLING: an install began (it may have moved files already) and is
  // finished. COMPLETE alone: nothing was moved yet.
  const bool installing = is_staged(kStagingInstallingFileName);
  const bool complete = installing || is_staged(kStagingCompleteFileName);
  std::erase(staged, std::string(kStagingLockFileName));
  auto discard = [&](const std::string& why) {
    // The list first: a crash meanwhile must not install what remains.
    io->Unlink(JoinPath(staging, kStagingCompleteFileName));
    for (const std::string& name : staged) io->Unlink(JoinPath(staging, name));
    if (!staged.empty()) log("discarded " + why + " in " + staging);
    return Status::OK();
  };
  if (!complete) return discard("an unfinished snapshot");
  // The list of the new store's files.
  const std::string list_path =
      JoinPath(staging, installing ? kStagingInstallingFileName : kStagingCompleteFileName);
  int fd;
  if (int err = io->Open(list_path, Io::kOpenExisting, &fd)) {
    return Status::FromErrno(err, "open " + list_path);
  }
  uint64_t size = 0;
  std::string list;
  s = FileSize(io, fd, &size, list_path);
  if (s.ok()) {
    list.resize(size);
    s = PreadExact(io, fd, list.data(), size, 0, list_path);
  }
  io->Close(fd);
  if (!s.ok()) return s;
  std::vector<std::string> files;
  for (size_t pos = 0; pos < list.size();) {
    size_t nl = list.find('\n', pos);
    if (nl == std::string::npos) nl = list.size();
    if (nl > pos) files.push_back(list.substr(pos, nl - pos));
    pos = nl + 1;
  }
  if (files.empty() || files.back() != kManifestFileName) {
    if (!installing) return discard("a snapshot whose list of files is damaged");
    return Status::Corruption(list_path + " does not end with the MANIFEST");
  }
  if (!installing) {
    // Nothing was moved: every file must be staged, or the snapshot is
    // incomplete (a file of the same name in the store is the old store's,
    // never to be taken for this snapshot's) and the old store, whole,
    // goes on; the replica asks for another snapshot.
    for (const std::string& f : files) {
      if (!is_staged(f)) return discard("a snapshot missing its file " + f);
    }
    const std::string begun = JoinPath(staging, kStagingInstallingFileName);
    if (int err = io->Rename(list_path, begun)) {
      return Status::FromErrno(err, "rename " + list_path);
    }
    int sfd;
    if (int err = io->OpenDir(staging, &sfd)) return Status::FromErrno(err, "open " + staging);
    s = SyncDir(io, sfd, staging);
    io->Close(sfd);
    if (!s.ok()) return s;
    return InstallLocked(io, dir, dir_fd, staging, log);
  }
  std::vector<std::string> present;
  s = ListDir(io, dir, &present);
  if (!s.ok()) return s;
  int staging_fd;
  if (int err = io->OpenDir(staging, &staging_fd)) return Status::FromErrno(err, "open " + staging);
  auto fail = [&](Status st) {
    io->Close(staging_fd);
    return st;
  };
  // Before the MANIFEST moves, the old store's MANIFEST names the old files:
  // segments of the old store not overwritten by a staged file of the same
  // name are deleted only after it, so an interrupted install is finished by
  // the next open, which sees INSTALLING again.
  for (const std::string& f : files) {
    const bool in_staging = std::find(staged.begin(), staged.end(), f) != staged.end();
    if (!in_staging) {
      // Moved by an earlier, interrupted install.
      if (std::find(present.begin(), present.end(), f) == present.end()) {
        return fail(Status::Corruption("the staged snapshot's file " + f + " is in neither " +
                                       staging + " nor " + dir));
      }
      continue;
    }
    if (f == kManifestFileName) {
      // The files the old MANIFEST lists but the new store does not have
      // would confuse its recovery (a stale active segment): gone first.
      for (const std::string& name : present) {
        if (IsStoreFile(name) && name != kManifestFileName &&
            std::find(files.begin(), files.end(), name) == files.end()) {
          io->Unlink(JoinPath(dir, name));
        }
      }
    }
    if (int err = io->Rename(JoinPath(staging, f), JoinPath(dir, f))) {
      return fail(Status::FromErrno(err, "rename " + JoinPath(staging, f)));
    }
    s = SyncDir(io, dir_fd, dir);
    if (s.ok()) s = SyncDir(io, staging_fd, staging);
    if (!s.ok()) return fail(s);
  }
  // Durably done: a later open must not install it again over newer files.
  if (io->Unlink(list_path) != 0) return fail(Status::IOError("unlink " + list_path));
  s = SyncDir(io, staging_fd, staging);
  io->Close(staging_fd);
  if (!s.ok()) return s;
  log("installed the snapshot staged in " + staging + " (" + std::to_string(files.size()) +
      " files)");
  return Status::OK();
}

}  // namespace

Status InstallStaged(Io* io, const std::string& dir, int dir_fd,
                     const std::function<void(const std::string&)>& log) {
  const std::string staging = JoinPath(dir, kStagingDirName);
  std::vector<std::string> names;
  if (int err = io->ListDir(staging, &names)) {
    if (err == ENOENT) return Status::OK();
    return Status::FromErrno(err, "list " + staging);
  }
  // The lock every writer of staging/ holds for its life (see Create). A
  // writer of this process may still live: a snapshot abandoned when its
  // replica was re-pointed, finishing in the thread pool while the store is
  // reopened. Its files are neither installed nor deleted under it: its
  // owner discards them once it is done, and a start after a crash finds
  // them whole (its COMPLETE lists only files it wrote).
  const std::string lock = JoinPath(staging, kStagingLockFileName);
  int lock_fd = -1;
  if (int err = io->Lock(lock, &lock_fd)) {
    if (err == EWOULDBLOCK || err == EAGAIN) {
      log("left " + staging + " alone: a snapshot is still being written there");
      return Status::OK();
    }
    return Status::FromErrno(err, "lock " + lock);
  }
  Status s = InstallLocked(io, dir, dir_fd, staging, log);
  io->Close(lock_fd);
  return s;
}

}  // namespace distkv::storage
