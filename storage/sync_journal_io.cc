// SyncJournalIo; see sync_journal_io.h.
#include "storage/sync_journal_io.h"

#include <fcntl.h>
#include <unistd.h>

namespace distkv::storage {

SyncJournalIo::SyncJournalIo(Io* base, const std::string& journal_path) : IoWrapper(base) {
  fd_ = ::open(journal_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

SyncJournalIo::~SyncJournalIo() {
  if (fd_ >= 0) ::close(fd_);
}

void SyncJournalIo::Append(const std::string& line) {
  // One write(2) a line, so a line is whole whenever the process dies.
  if (fd_ >= 0 && ::write(fd_, line.data(), line.size()) < 0) return;
}

int SyncJournalIo::Open(const std::string& path, int flags, int* handle) {
  const int err = base()->Open(path, flags, handle);
  if (err == 0) {
    std::lock_guard<std::mutex> l(mu_);
    paths_[*handle] = path;
    if (flags & (kCreate | kTruncate)) Append("create " + path + "\n");
  }
  return err;
}

void SyncJournalIo::Close(int handle) {
  {
    std::lock_guard<std::mutex> l(mu_);
    paths_.erase(handle);
  }
  base()->Close(handle);
}

int SyncJournalIo::Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) {
  const int err = base()->Write(handle, data, n, off, done);
  if (err == 0 && *done > 0) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = paths_.find(handle);
    if (it != paths_.end()) {
      Append("write " + it->second + " " + std::to_string(off) + " " + std::to_string(*done) + "\n");
    }
  }
  return err;
}

int SyncJournalIo::Sync(int handle) {
  const int err = base()->Sync(handle);
  if (err == 0) {
    uint64_t size = 0;
    if (base()->Size(handle, &size) == 0) {
      std::lock_guard<std::mutex> l(mu_);
      auto it = paths_.find(handle);
      if (it != paths_.end()) Append("sync " + it->second + " " + std::to_string(size) + "\n");
    }
  }
  return err;
}

int SyncJournalIo::Rename(const std::string& from, const std::string& to) {
  const int err = base()->Rename(from, to);
  if (err == 0) {
    std::lock_guard<std::mutex> l(mu_);
    Append("rename " + from + " " + to + "\n");
  }
  return err;
}

int SyncJournalIo::Unlink(const std::string& path) {
  const int err = base()->Unlink(path);
  if (err == 0) {
    std::lock_guard<std::mutex> l(mu_);
    Append("unlink " + path + "\n");
  }
  return err;
}

}  // namespace distkv::storage
