// Compaction and hint jobs, and the store's side of them; the mechanism is
// described in compaction.h.
#include "storage/compaction.h"

#include <errno.h>

#include <algorithm>
#include <cassert>
#include <unordered_map>

#include "storage/file_util.h"
#include "storage/hint_file.h"
#include "storage/key_index.h"
#include "storage/segment_reader.h"
#include "storage/store_impl.h"

namespace distkv::storage {

namespace {

constexpr size_t kWriteBufferBytes = 1 << 20;
constexpr size_t kReadWindowBytes = 1 << 20;

int InjectWith(const std::function<int(std::string_view)>* hook, std::string_view step) {
  return (hook && *hook) ? (*hook)(step) : 0;
}

// Calls fn(record fields, a put's expiry or 0) for every put and delete
// record of a segment (gap records say nothing about keys): from its hint
// file if that is valid, else by scanning it with every CRC checked.
Status ForEachRecordOf(
    Io* io, const std::string& dir, uint32_t id, const std::string& path, int fd, uint64_t size,
    const std::function<void(std::string_view key, const IndexEntry& e, uint64_t expires_ms)>& fn) {
  Status s = ReadHintFile(io, JoinPath(dir, HintFileName(id)), size, [&](const HintEntry& h) {
    if (h.gap) return;
    IndexEntry e;
    e.lsn = h.lsn;
    e.offset = h.offset;
    e.segment = id;
    e.value_len = h.value_len;
    e.deleted = h.tombstone;
    fn(h.key, e, h.expires_ms);
  });
  if (s.ok() || s.IsIOError() || s.IsNoSpace()) return s;
  SegmentReader reader(io, fd, path, 0, size, 4 << 20, /*skip_large_values=*/true);
  Record rec;
  std::string_view raw;
  uint64_t off;
  for (;;) {
    s = reader.Next(&rec, &raw, &off);
    if (!s.ok()) break;
    if (rec.type == RecordType::kGap) continue;
    IndexEntry e;
    e.lsn = rec.lsn;
    e.offset = off;
    e.segment = id;
    e.value_len = static_cast<uint32_t>(reader.value_bytes());
    e.deleted = rec.type == RecordType::kDelete;
    fn(rec.key, e, rec.expires_ms);
  }
  if (s.IsNotFound()) return Status::OK();
  return Status::Corruption("compaction input " + path + " at offset " +
                            std::to_string(reader.offset()) + ": " + s.ToString());
}

}  // namespace

// --- CompactionJobImpl ------------------------------------------------------------

int CompactionJobImpl::Inject(std::string_view step) const { return InjectWith(fault_hook, step); }

const CompactionJobImpl::Moved* CompactionJobImpl::Find(uint64_t lsn) const {
  auto it = std::lower_bound(moved.begin(), moved.end(), lsn,
                             [](const Moved& m, uint64_t l) { return m.lsn < l; });
  return (it != moved.end() && it->lsn == lsn) ? &*it : nullptr;
}

Status CompactionJobImpl::Select(std::vector<Moved>* chosen) {
  KeyIndex newest;
  // The expiry of each key's newest record that has one (LSN, expiry): few
  // keys have a TTL, so this stays small.
  std::unordered_map<std::string, std::pair<uint64_t, uint64_t>> expiry;
  auto note = [&](std::string_view key, const IndexEntry& e, uint64_t expires_ms) {
    bool replaced;
    IndexEntry old;
    newest.PutIfNewer(key, e, &replaced, &old);
    if (expires_ms != 0 && expired_by_ms != 0) {
      auto [it, added] = expiry.try_emplace(std::string(key), e.lsn, expires_ms);
      if (!added && it->second.first < e.lsn) it->second = {e.lsn, expires_ms};
    }
  };
  uint64_t done = 0;
  for (const Input& in : inputs) {
    Status s = ForEachRecordOf(io, dir, in.id, in.path, in.fd, in.size, note);
    if (!s.ok()) return s;
    done += in.size;
    progress_.store(done / 2, std::memory_order_relaxed);
  }
  if (active.size > 0) {
    Status s = ForEachRecordOf(io, dir, active.id, active.path, active.fd, active.size, note);
    if (!s.ok()) return s;
  }
  chosen->reserve(newest.size());
  newest.ForEach([&](std::string_view key, const IndexEntry& e) {
    if (active.size > 0 && e.segment == active.id) return;  // superseded by a newer record
    if (e.deleted && e.lsn <= options.keep_tombstones_after) {
      // Every segment older than the active one is an input: no older
      // record of this key remains once the inputs are gone.
      dropped_tombstones++;
      horizon = std::max(horizon, e.lsn);
      return;
    }
    if (!e.deleted && !expiry.empty() && e.lsn <= options.keep_tombstones_after) {
      auto it = expiry.find(std::string(key));
      if (it != expiry.end() && it->second.first == e.lsn && it->second.second <= expired_by_ms) {
        // Expired: gone as if deleted, by the tombstone's rule.
        dropped_expired.emplace_back(std::string(key), e.lsn);
        horizon = std::max(horizon, e.lsn);
        return;
      }
    }
    Moved m;
    m.lsn = e.lsn;
    m.key_at = keys.size();
    m.key_len = static_cast<uint32_t>(key.size());
    m.segment = e.segment;
    m.offset = e.offset;
    m.value_len = e.value_len;
    m.tombstone = e.deleted;
    keys.append(key);
    chosen->push_back(m);
  });
  std::sort(chosen->begin(), chosen->end(),
            [](const Moved& a, const Moved& b) { return a.lsn < b.lsn; });
  return Status::OK();
}

Status CompactionJobImpl::CloseOutput(Output* out, int fd, const std::string& hint) {
  Status s;
  if (int err = Inject("compact:sync")) s = Status::FromErrno(err, "fdatasync " + out->path);
  const std::string tmp = out->path + ".tmp";
  if (s.ok()) s = SyncFile(io, fd, tmp);
  io->Close(fd);
  if (!s.ok()) return s;
  if (int err = Inject("compact:publish")) return Status::FromErrno(err, "rename " + out->path);
  if (int err = io->Rename(tmp, out->path)) return Status::FromErrno(err, "rename " + tmp);
  return WriteFileAtomically(io, dir, HintFileName(out->id), hint, /*dir_fd=*/-1);
}

Status CompactionJobImpl::Write(const std::vector<Moved>& chosen) {
  const Input* window_input = nullptr;
  std::string window;  // bytes of window_input from window_at
  uint64_t window_at = 0;
  std::string buf;
  HintBuilder hint;
  Output out;
  int fd = -1;
  size_t next_id = 0;
  Status s;

  auto flush = [&]() -> Status {
    if (buf.empty()) return Status::OK();
    if (int err = Inject("compact:write")) return Status::FromErrno(err, "write " + out.path);
    Status w = PwriteAll(io, fd, buf.data(), buf.size(), out.size - buf.size(), out.path + ".tmp");
    buf.clear();
    return w;
  };
  auto finish_output = [&]() -> Status {
    Status f = flush();
    if (!f.ok()) {
      io->Close(fd);
      fd = -1;
      return f;
    }
    f = CloseOutput(&out, fd, hint.Finish(out.size));
    fd = -1;
    outputs.push_back(out);
    hint.Clear();
    return f;
  };

  auto find_input = [&](uint32_t id) -> const Input* {
    for (const Input& in : inputs) {
      if (in.id == id) return &in;
    }
    return nullptr;
  };

  size_t n = 0;
  for (const Moved& c : chosen) {
    const Input* in = find_input(c.segment);
    const uint64_t size = EncodedRecordSize(c.key_len, c.value_len);
    if (in != window_input || c.offset < window_at || c.offset + size > window_at + window.size()) {
      window_input = in;
      window_at = c.offset;
      window.resize(std::max<uint64_t>(kReadWindowBytes, size));
      size_t got = 0;
      s = PreadSome(io, in->fd, window.data(), window.size(), c.offset, &got, in->path);
      if (!s.ok()) break;
      window.resize(got);
      if (got < size) {
        s = Status::Corruption("compaction input " + in->path + " ends inside the record at " +
                               std::to_string(c.offset));
        break;
      }
    }
    Record rec;
    size_t used;
    s = DecodeRecord(std::string_view(window).substr(c.offset - window_at, size), &rec, &used);
    if (s.ok() && (rec.lsn != c.lsn || used != size)) s = Status::Corruption("record moved");
    if (!s.ok()) {
      s = Status::Corruption("compaction input " + in->path + " at offset " +
                             std::to_string(c.offset) + ": " + s.ToString());
      break;
    }
    if (fd >= 0 && out.size + size > segment_bytes) {
      s = finish_output();
      if (!s.ok()) break;
    }
    if (fd < 0) {
      if (next_id >= reserved.size()) {
        s = Status::InvalidArgument("compaction needs more output ids than reserved");
        break;
      }
      out = Output{};
      out.id = reserved[next_id++];
      out.path = JoinPath(dir, SegmentFileName(out.id));
      const std::string tmp = out.path + ".tmp";
      if (int err = io->Open(tmp, Io::kCreate | Io::kTruncate, &fd)) {
        fd = -1;
        s = Status::FromErrno(err, "create " + tmp);
        break;
      }
    }
    Moved m = c;
    m.segment = out.id;
    m.offset = out.size;
    moved.push_back(m);
    hint.Add(rec, out.size);
    if (out.first_lsn == 0) out.first_lsn = rec.lsn;
    out.last_lsn = rec.lsn;
    if (rec.group_continues) {
      // An atomic group means nothing once its records are sealed, and the
      // rest of the group may not be copied: the record is written as a
      // group of one (same LSN and bytes, a new CRC).
      rec.group_continues = false;
      EncodeRecord(rec, &buf);
    } else {
      buf.append(window, c.offset - window_at, size);
    }
    out.size += size;
    if (buf.size() >= kWriteBufferBytes) {
      s = flush();
      if (!s.ok()) break;
    }
    if (++n % 1024 == 0) {
      progress_.store(input_bytes_ / 2 + input_bytes_ / 2 * n / chosen.size(),
                      std::memory_order_relaxed);
    }
  }
  if (s.ok() && fd >= 0) s = finish_output();
  if (fd >= 0) io->Close(fd);
  return s;
}

Status CompactionJobImpl::Begin() {
  if (int err = Inject("compact:reserve")) return Status::FromErrno(err, "write MANIFEST");
  Manifest reserving = state_before;
  reserving.reserved = reserved;
  return manifest_writer->Update(reserving, CopyCompactionFields);
}

Status CompactionJobImpl::Main() {
  std::vector<Moved> chosen;
  Status s = Select(&chosen);
  if (s.ok()) s = Write(chosen);
  if (s.ok()) s = SyncDir(io, dir_fd, dir);
  return s;
}

Status CompactionJobImpl::End() {
  if (int err = Inject("compact:commit")) return Status::FromErrno(err, "write MANIFEST");
  state_after = state_before;
  state_after.reserved.clear();
  uint64_t inputs_end = 0;
  for (const Input& in : inputs) {
    std::erase_if(state_after.compacted, [&](const CompactedSegment& c) { return c.id == in.id; });
    state_after.obsolete.push_back(in.id);
    inputs_end = std::max(inputs_end, in.last_lsn);
  }
  for (const Output& o : outputs) {
    state_after.compacted.push_back(CompactedSegment{o.id, o.first_lsn, o.last_lsn});
  }
  state_after.tombstone_horizon = std::max(state_before.tombstone_horizon, horizon);
  // The writer's log now starts after the inputs.
  state_after.log_start = std::max(state_before.log_start, inputs_end + 1);
  Status s = manifest_writer->Update(state_after, CopyCompactionFields);
  if (!s.ok()) return s;
  committed = true;
  progress_.store(input_bytes_, std::memory_order_relaxed);
  return Status::OK();
}

// --- HintJobImpl ------------------------------------------------------------------

Status HintJobImpl::Main() {
  uint64_t done = 0;
  for (const Target& t : targets) {
    HintBuilder hint;
    SegmentReader reader(io, t.fd, t.path, 0, t.size, 4 << 20);
    Record rec;
    std::string_view raw;
    uint64_t off;
    Status s;
    while ((s = reader.Next(&rec, &raw, &off)).ok()) hint.Add(rec, off);
    done += t.size;
    progress_.store(done, std::memory_order_relaxed);
    if (!s.IsNotFound()) continue;  // damaged: recovery will scan it and say so
    if (int err = InjectWith(fault_hook, "hint:write")) {
      return Status::FromErrno(err, "write " + HintFileName(t.id));
    }
    s = WriteFileAtomically(io, dir, HintFileName(t.id), hint.Finish(t.size), /*dir_fd=*/-1);
    if (!s.ok()) return s;
    written.push_back(t.id);
  }
  return Status::OK();
}

// --- StoreImpl: planning, adopting, repointing, releasing --------------------------

std::unique_ptr<StoreJob> StoreImpl::TakeCompaction(const CompactionOptions& options) {
  if (job_running_ || swap_ || !read_only_.ok()) return nullptr;
  const Segment* active = FindSegment(active_id_);
  // While the active segment's file does not exist yet, a failed batch could
  // make the previous segment active again: it must not be an input.
  if (!active || active->fd < 0) return nullptr;
  auto job = std::make_unique<CompactionJobImpl>();
  for (const Segment& s : segments_) {
    if (s.id == active_id_ || !s.Settled()) continue;
    job->inputs.push_back({s.id, s.path, s.fd, s.written, s.last_lsn});
    job->input_bytes_ += s.written;
  }
  if (job->inputs.empty()) return nullptr;
  job->active = {active->id, active->path, active->fd, active->written, active->last_lsn};
  for (size_t i = 0; i < job->inputs.size(); i++) {
    job->reserved.push_back(static_cast<uint32_t>(next_segment_id_++));
  }
  job->dir = options_.dir;
  job->segment_bytes = options_.segment_bytes;
  job->options = options;
  job->expired_by_ms = clock_ ? clock_() : 0;
  job->fault_hook = &options_.fault_hook;
  job->io = io_;
  if (options.bytes_per_s > 0) {
    job->limiter = std::make_unique<RateLimiter>(options.bytes_per_s, options.clock);
    job->limited_io = std::make_unique<LimitedIo>(io_, job->limiter.get());
    job->io = job->limited_io.get();
  }
  job->dir_fd = dir_fd_;
  job->manifest_writer = manifest_writer_.get();
  job->state_before = manifest_;
  // Obsolete ids whose files are gone need no mention any more.
  std::erase_if(job->state_before.obsolete, [&](uint32_t id) { return !FindSegment(id); });
  job->state_before.reserved.clear();
  job_running_ = compaction_job_ = true;
  return job;
}

std::unique_ptr<StoreJob> StoreImpl::TakeHintJob() {
  // A read-only store (after a failed sync) writes no file until it is
  // reopened: on a failing disk each check would only fail and log again.
  // The reopened store writes the hint files.
  if (job_running_ || !read_only_.ok()) return nullptr;
  // Backing off after a failed job (compaction.h, kMaxHintSkip).
  if (hint_skip_ > 0) {
    hint_skip_--;
    return nullptr;
  }
  auto job = std::make_unique<HintJobImpl>();
  for (const Segment& s : segments_) {
    if (s.id == active_id_ || !s.Settled() || s.compacted || s.hinted || s.written == 0) continue;
    job->targets.push_back({s.id, s.path, s.fd, s.written});
    job->input_bytes_ += s.written;
  }
  if (job->targets.empty()) return nullptr;
  job->dir = options_.dir;
  job->io = io_;
  job->fault_hook = &options_.fault_hook;
  job_running_ = true;
  return job;
}

void StoreImpl::FinishJob(std::unique_ptr<StoreJob> job, Status status) {
  assert(job_running_);
  job_running_ = compaction_job_ = false;
  if (!job->is_compaction()) {
    auto* h = static_cast<HintJobImpl*>(job.get());
    for (uint32_t id : h->written) {
      if (Segment* s = FindSegment(id)) s->hinted = true;
    }
    if (status.ok()) {
      hint_backoff_next_ = 1;
    } else {
      hint_skip_ = hint_backoff_next_;
      hint_backoff_next_ = std::min(hint_backoff_next_ * 2, kMaxHintSkip);
      Log("writing hint files failed, tried again after " + std::to_string(hint_skip_) +
          " more checks: " + status.ToString());
    }
    return;
  }
  std::unique_ptr<CompactionJobImpl> c(static_cast<CompactionJobImpl*>(job.release()));
  if (!status.ok() || !c->committed) {
    // Not committed: the inputs stay in force; the outputs go.
    for (const CompactionJobImpl::Output& o : c->outputs) {
      io_->Unlink(o.path);
      io_->Unlink(JoinPath(options_.dir, HintFileName(o.id)));
    }
    for (uint32_t id : c->reserved) {
      io_->Unlink(JoinPath(options_.dir, SegmentFileName(id)) + ".tmp");
    }
    compactions_failed_++;
    Log("compaction failed, nothing changed: " + status.ToString());
    return;
  }
  uint64_t in_bytes = 0, out_bytes = 0;
  for (const CompactionJobImpl::Input& in : c->inputs) {
    Segment* s = FindSegment(in.id);
    s->obsolete = true;
    in_bytes += in.size;
  }
  for (const CompactionJobImpl::Output& o : c->outputs) {
    Segment seg;
    seg.id = o.id;
    seg.path = o.path;
    if (int err = io_->Open(o.path, Io::kOpenExisting, &seg.fd)) {
      seg.fd = -1;
      read_only_ = Status::FromErrno(err, "open compacted segment " + o.path +
                                              "; the store accepts no writes until restarted");
      Log(read_only_.ToString());
    }
    seg.written = seg.end = seg.allocated = o.size;
    seg.first_lsn = o.first_lsn;
    seg.last_lsn = o.last_lsn;
    seg.compacted = true;
    seg.hinted = true;
    auto it = std::lower_bound(segments_.begin(), segments_.end(), seg.id,
                               [](const Segment& x, uint32_t v) { return x.id < v; });
    segments_.insert(it, std::move(seg));
    total_bytes_ += o.size;
    out_bytes += o.size;
  }
  // Expired keys whose records were dropped leave the index (unless a write
  // replaced them meanwhile), as a tombstone would have taken them out.
  for (const auto& [key, lsn] : c->dropped_expired) {
    IndexEntry e;
    if (!index_.Find(key, &e) || e.lsn != lsn) continue;
    const uint64_t bytes = EncodedRecordSize(key.size(), e.value_len);
    live_bytes_ -= bytes;
    SubLive(e.segment, bytes);
    index_.Erase(key);
    expiry_.Set(key, 0);
  }
  CopyCompactionFields(c->state_after, &manifest_);
  compactions_++;
  bytes_reclaimed_ += in_bytes > out_bytes ? in_bytes - out_bytes : 0;
  Log("compaction: " + std::to_string(c->inputs.size()) + " segments (" + std::to_string(in_bytes) +
      " bytes) -> " + std::to_string(c->outputs.size()) + " (" + std::to_string(out_bytes) +
      " bytes), " + std::to_string(c->moved.size()) + " records kept, " +
      std::to_string(c->dropped_tombstones) + " tombstones and " +
      std::to_string(c->dropped_expired.size()) + " expired keys dropped, horizon LSN " +
      std::to_string(manifest_.tombstone_horizon) +
      (c->limiter ? ", paced to " + std::to_string(c->limiter->bytes_per_s()) + " bytes/s (slept " +
                        std::to_string(c->limiter->slept_ns() / 1000000) + " ms)"
                  : ""));
  swap_ = std::move(c);
  swap_pos_ = 0;
  if (swap_->moved.empty()) CompactionStep(0);
}

bool StoreImpl::CompactionStep(size_t max_entries) {
  if (!swap_) return false;
  const size_t end = std::min(swap_->moved.size(), swap_pos_ + max_entries);
  for (; swap_pos_ < end; swap_pos_++) {
    const CompactionJobImpl::Moved& m = swap_->moved[swap_pos_];
    if (m.tombstone) continue;  // the index holds no tombstones
    const std::string_view key = swap_->key(m);
    IndexEntry e;
    if (!index_.Find(key, &e) || e.lsn != m.lsn) continue;  // a newer write won
    const Segment* at = FindSegment(e.segment);
    if (!at || !at->obsolete) continue;  // already moved (a rollback relocated it)
    const uint64_t bytes = EncodedRecordSize(key.size(), e.value_len);
    SubLive(e.segment, bytes);
    e.segment = m.segment;
    e.offset = m.offset;
    index_.Put(key, e);
    AddLive(m.segment, bytes);
  }
  if (swap_pos_ < swap_->moved.size()) return true;
  if (swap_done_lsn_ == 0 || swap_done_lsn_ < last_lsn_) swap_done_lsn_ = last_lsn_;
  ReleaseObsolete();
  return false;
}

uint64_t StoreImpl::OldestPendingLsn() const {
  if (!inflight_.empty()) return inflight_.lsn_before + 1;
  if (!staged_.empty()) return staged_.lsn_before + 1;
  return UINT64_MAX;
}

IndexEntry StoreImpl::Relocate(std::string_view key, const IndexEntry& e) const {
  if (!swap_) return e;
  const Segment* s = FindSegment(e.segment);
  if (!s || !s->obsolete) return e;
  const CompactionJobImpl::Moved* m = swap_->Find(e.lsn);
  if (!m || swap_->key(*m) != key) return e;
  IndexEntry out = e;
  out.segment = m->segment;
  out.offset = m->offset;
  return out;
}

void StoreImpl::ReleaseObsolete() {
  if (swap_) {
    if (swap_pos_ < swap_->moved.size()) return;
    // A write staged before repointing ended may still be rolled back, and
    // its undo entry may name an input: keep them until it is durable.
    if (OldestPendingLsn() <= swap_done_lsn_) return;
    swap_.reset();
    swap_pos_ = 0;
    swap_done_lsn_ = 0;
  }
  // A log cursor still reading one of the replaced segments keeps them all
  // (it reads on into the next); the last Unpin comes back here.
  for (const Segment& seg : segments_) {
    if (seg.obsolete && pins_.count(seg.id)) return;
  }
  // The order of the unlinks does not matter: the MANIFEST already says the
  // inputs are gone. Newest first, as the order that would bring a deleted
  // key back (its tombstone going before its older value) if it did.
  for (size_t i = segments_.size(); i-- > 0;) {
    Segment& seg = segments_[i];
    if (!seg.obsolete) continue;
    InjectWith(&options_.fault_hook, "compact:release");
    if (seg.fd >= 0) io_->Close(seg.fd);
    io_->Unlink(seg.path);
    io_->Unlink(JoinPath(options_.dir, HintFileName(seg.id)));
    total_bytes_ -= seg.end;
    segments_.erase(segments_.begin() + static_cast<ptrdiff_t>(i));
  }
}

void StoreImpl::Unpin(uint32_t id) const {
  auto it = pins_.find(id);
  if (it == pins_.end()) return;
  if (--it->second > 0) return;
  pins_.erase(it);
  const Segment* seg = FindSegment(id);
  if (seg && seg->obsolete) const_cast<StoreImpl*>(this)->ReleaseObsolete();
}

Status StoreImpl::Compact(const CompactionOptions& options) {
  Status s = Flush();
  if (!s.ok()) return s;
  std::unique_ptr<StoreJob> job = TakeCompaction(options);
  if (!job) return job_running_ || swap_ ? Status::Busy("a compaction runs") : Status::OK();
  s = job->Run();
  FinishJob(std::move(job), s);
  while (CompactionStep(1 << 16)) {
  }
  return s;
}

void StoreImpl::AddLive(uint32_t segment, uint64_t bytes) {
  if (Segment* s = FindSegment(segment)) s->live += bytes;
}

void StoreImpl::SubLive(uint32_t segment, uint64_t bytes) {
  if (Segment* s = FindSegment(segment)) s->live -= std::min(s->live, bytes);
}

}  // namespace distkv::storage
