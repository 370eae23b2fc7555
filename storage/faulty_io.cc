// FaultyIo; see faulty_io.h.
#include "storage/faulty_io.h"

#include <errno.h>

#include <algorithm>
#include <cstring>

namespace distkv::storage {

std::string FaultyIo::Parent(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

bool FaultyIo::Tick() {
  calls_++;
  if (crash_at_ != 0 && calls_ >= crash_at_) {
    crash_at_ = 0;
    down_ = true;
    // PowerCut's body, with mu_ held.
    std::map<std::string, std::set<std::string>> by_dir;
    for (const auto& [path, file] : entries_) by_dir[Parent(path)].insert(path);
    for (const auto& [path, file] : durable_) by_dir[Parent(path)].insert(path);
    std::map<std::string, std::shared_ptr<File>> after;
    for (const auto& [dir, paths] : by_dir) {
      // A directory's unsynced changes reach the disk or not, at random
      // (mostly not).
      const bool keep_new = keep_torn_ && rng_() % 4 == 0;
      for (const std::string& p : paths) {
        const auto& src = keep_new ? entries_ : durable_;
        auto it = src.find(p);
        if (it != src.end()) after[p] = it->second;
      }
    }
    entries_ = after;
    durable_ = after;
    for (auto& [path, file] : entries_) {
      std::string kept = file->synced;
      if (keep_torn_ && !file->poisoned) {
        // Bytes overwritten within the synced size (pre-allocated space):
        // each sector of them reaches the disk or not, in no order.
        const size_t common = std::min(file->data.size(), kept.size());
        for (size_t at = 0; at < common; at += kSectorBytes) {
          const size_t n = std::min(kSectorBytes, common - at);
          if (file->data.compare(at, n, kept, at, n) != 0 && rng_() % 2 == 0) {
            kept.replace(at, n, file->data, at, n);
          }
        }
        // Appended bytes: a prefix of them (ext4's ordered mode writes an
        // appended block before the file size that shows it).
        if (file->data.size() > kept.size()) {
          const size_t extra = rng_() % (file->data.size() - kept.size() + 1);
          kept.append(file->data, kept.size(), extra);
        }
      }
      file->data = kept;
      file->synced = kept;
      file->poisoned = false;  // a new boot, a new page cache
    }
    handles_.clear();
    locked_.clear();
    return false;
  }
  return true;
}

uint64_t FaultyIo::UsedBytes() const {
  uint64_t n = 0;
  for (const auto& [path, file] : entries_) n += file->data.size();
  return n;
}

int FaultyIo::Open(const std::string& path, int flags, int* handle) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  auto it = entries_.find(path);
  if (it == entries_.end() && !(flags & kCreate)) return ENOENT;
  if (!dirs_.count(Parent(path))) return ENOENT;
  if ((it == entries_.end() || (flags & kTruncate)) && !Tick()) return EIO;
  if (it == entries_.end()) it = entries_.emplace(path, std::make_shared<File>()).first;
  if (flags & kTruncate) it->second->data.clear();
  *handle = next_handle_++;
  handles_[*handle] = Handle{it->second, path, false, false};
  return 0;
}

int FaultyIo::OpenDir(const std::string& path, int* handle) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  if (!dirs_.count(path)) return ENOENT;
  *handle = next_handle_++;
  handles_[*handle] = Handle{nullptr, path, true, false};
  return 0;
}

void FaultyIo::Close(int handle) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = handles_.find(handle);
  if (it == handles_.end()) return;
  if (it->second.lock) locked_.erase(it->second.path);
  handles_.erase(it);
}

int FaultyIo::Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  auto it = handles_.find(handle);
  if (it == handles_.end() || !it->second.file) return EBADF;
  if (!Tick()) return EIO;
  File& f = *it->second.file;
  const uint64_t used = UsedBytes();
  const uint64_t growth = off + n > f.data.size() ? off + n - f.data.size() : 0;
  size_t len = n;
  if (growth > 0 && used + growth > capacity_) {
    const uint64_t room = capacity_ > used ? capacity_ - used : 0;
    const uint64_t reach = f.data.size() + room;  // the file may grow to here
    len = off >= reach ? 0 : static_cast<size_t>(std::min<uint64_t>(n, reach - off));
    if (len == 0) return ENOSPC;
  }
  if (short_writes_ && len > 1) len = std::max<size_t>(1, len / 2);
  if (f.data.size() < off + len) f.data.resize(off + len, '\0');
  std::memcpy(f.data.data() + off, data, len);
  *done = len;
  return 0;
}

int FaultyIo::Read(int handle, char* data, size_t n, uint64_t off, size_t* done) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  auto it = handles_.find(handle);
  if (it == handles_.end() || !it->second.file) return EBADF;
  const std::string& d = it->second.file->data;
  const size_t len = off >= d.size() ? 0 : std::min<size_t>(n, d.size() - off);
  if (len > 0) std::memcpy(data, d.data() + off, len);
  *done = len;
  return 0;
}

int FaultyIo::Sync(int handle) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  auto it = handles_.find(handle);
  if (it == handles_.end() || !it->second.file) return EBADF;
  if (!Tick()) return EIO;
  File& f = *it->second.file;
  syncs_++;
  if (fail_sync_at_ != 0 && syncs_ >= fail_sync_at_) {
    fail_sync_at_ = 0;
    f.poisoned = true;  // the dirty pages are dropped, though reads still see them
    return fail_sync_err_;
  }
  if (!f.poisoned) f.synced = f.data;
  return 0;
}

int FaultyIo::SyncDir(int handle) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  auto it = handles_.find(handle);
  if (it == handles_.end() || !it->second.dir) return EBADF;
  if (!Tick()) return EIO;
  const std::string& dir = it->second.path;
  for (auto d = durable_.begin(); d != durable_.end();) {
    d = Parent(d->first) == dir ? durable_.erase(d) : std::next(d);
  }
  for (const auto& [path, file] : entries_) {
    if (Parent(path) == dir) durable_[path] = file;
  }
  return 0;
}

int FaultyIo::Truncate(int handle, uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  auto it = handles_.find(handle);
  if (it == handles_.end() || !it->second.file) return EBADF;
  if (!Tick()) return EIO;
  it->second.file->data.resize(size, '\0');
  return 0;
}

int FaultyIo::Size(int handle, uint64_t* size) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  auto it = handles_.find(handle);
  if (it == handles_.end() || !it->second.file) return EBADF;
  *size = it->second.file->data.size();
  return 0;
}

int FaultyIo::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  auto it = entries_.find(from);
  if (it == entries_.end()) return ENOENT;
  if (!Tick()) return EIO;
  std::shared_ptr<File> f = it->second;
  entries_.erase(it);
  entries_[to] = f;
  return 0;
}

int FaultyIo::Unlink(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  if (!entries_.count(path)) return ENOENT;
  if (!Tick()) return EIO;
  entries_.erase(path);
  return 0;
}

int FaultyIo::CreateDirs(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  // Directories are durable at once: the tests' stores live in one.
  for (size_t i = 1; i <= path.size(); i++) {
    if (i == path.size() || path[i] == '/') dirs_.insert(path.substr(0, i));
  }
  dirs_.insert("");
  return 0;
}

int FaultyIo::ListDir(const std::string& path, std::vector<std::string>* names) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  if (!dirs_.count(path)) return ENOENT;
  names->clear();
  for (const auto& [p, file] : entries_) {
    if (Parent(p) == path) names->push_back(p.substr(path.size() + 1));
  }
  return 0;
}

int FaultyIo::Lock(const std::string& path, int* handle) {
  std::lock_guard<std::mutex> l(mu_);
  if (down_) return EIO;
  if (locked_.count(path)) return EWOULDBLOCK;
  locked_.insert(path);
  *handle = next_handle_++;
  handles_[*handle] = Handle{nullptr, path, false, true};
  return 0;
}

void FaultyIo::CrashAfter(uint64_t calls) {
  std::lock_guard<std::mutex> l(mu_);
  crash_at_ = calls == 0 ? 0 : calls_ + calls;
}

void FaultyIo::PowerCut() {
  std::lock_guard<std::mutex> l(mu_);
  crash_at_ = calls_ + 1;
  Tick();
}

bool FaultyIo::down() const {
  std::lock_guard<std::mutex> l(mu_);
  return down_;
}

void FaultyIo::Restart() {
  std::lock_guard<std::mutex> l(mu_);
  down_ = false;
  crash_at_ = 0;
  fail_sync_at_ = 0;
  handles_.clear();
  locked_.clear();
}

void FaultyIo::KeepTornWrites(bool keep) {
  std::lock_guard<std::mutex> l(mu_);
  keep_torn_ = keep;
}

void FaultyIo::FailSyncAfter(uint64_t syncs, int err) {
  std::lock_guard<std::mutex> l(mu_);
  fail_sync_at_ = syncs == 0 ? 0 : syncs_ + syncs;
  fail_sync_err_ = err;
}

void FaultyIo::SetCapacity(uint64_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  capacity_ = bytes;
}

void FaultyIo::ShortWrites(bool on) {
  std::lock_guard<std::mutex> l(mu_);
  short_writes_ = on;
}

uint64_t FaultyIo::mutating_calls() const {
  std::lock_guard<std::mutex> l(mu_);
  return calls_;
}

bool FaultyIo::Exists(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  return entries_.count(path) > 0;
}

std::string FaultyIo::Contents(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(path);
  return it == entries_.end() ? std::string() : it->second->data;
}

}  // namespace distkv::storage
