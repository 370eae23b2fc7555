// FaultyIo: an in-memory file system for tests, which remembers what was
// made durable and can fail the way disks and power supplies do.
//
// Every file keeps two versions: its data (what reads see: the page cache)
// and its synced data (what a Sync last made durable). Every directory keeps
// its entries and the entries as of its last SyncDir. A power cut throws the
// page cache away: each file falls back to its synced data — plus, if asked,
// a random prefix of the bytes appended since (a torn write) and a random
// subset of the 512-byte sectors overwritten since (pre-allocated space
// written in place reaches the disk in no order) — and each
// directory falls back to its synced entries (or keeps its new ones, at
// random: a rename may or may not have reached the disk). After the cut
// every call fails with EIO, as for a process that died with the machine,
// until Restart() (the next boot).
//
// Faults: a power cut at the n-th mutating call; the n-th Sync failing with
// EIO, after which the file's unsynced bytes are lost for good and later
// syncs of them "succeed" without persisting anything (Linux's behaviour that
// fsyncgate is about); short writes; and a capacity past which writes stop
// short and fail with ENOSPC.
//
// Thread-safe: the store calls it from its thread and a batch's thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "storage/io.h"

namespace distkv::storage {

class FaultyIo final : public Io {
 public:
  explicit FaultyIo(uint64_t seed = 1) : rng_(seed) {}

  int Open(const std::string& path, int flags, int* handle) override;
  int OpenDir(const std::string& path, int* handle) override;
  void Close(int handle) override;
  int Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) override;
  int Read(int handle, char* data, size_t n, uint64_t off, size_t* done) override;
  int Sync(int handle) override;
  int SyncDir(int handle) override;
  int Truncate(int handle, uint64_t size) override;
  int Size(int handle, uint64_t* size) override;
  int Rename(const std::string& from, const std::string& to) override;
  int Unlink(const std::string& path) override;
  int CreateDirs(const std::string& path) override;
  int ListDir(const std::string& path, std::vector<std::string>* names) override;
  int Lock(const std::string& path, int* handle) override;

  // The power goes at the n-th mutating call from now (1: the next one),
  // which does not happen. 0 cancels.
  void CrashAfter(uint64_t calls);
  // The power goes now.
  void PowerCut();
  bool down() const;
  // Power back: every handle is gone, calls work again.
  void Restart();
  // A power cut keeps a random prefix of each file's unsynced appended bytes
  // and a random subset of its unsynced overwritten sectors (default: drops
  // them all).
  void KeepTornWrites(bool keep);
  // The n-th Sync from now fails with err (0 cancels).
  void FailSyncAfter(uint64_t syncs, int err = 5 /* EIO */);
  // Total file bytes allowed (writes past it stop short, then ENOSPC).
  void SetCapacity(uint64_t bytes);
  void ShortWrites(bool on);

  // Inspection for tests.
  uint64_t mutating_calls() const;
  bool Exists(const std::string& path) const;
  std::string Contents(const std::string& path) const;  // what reads see

 private:
  struct File {
    std::string data;
    std::string synced;
    bool poisoned = false;  // a sync failed: unsynced bytes never persist
  };
  struct Handle {
    std::shared_ptr<File> file;  // null for a directory or a lock
    std::string path;
    bool dir = false;
    bool lock = false;
  };

  // Counts a mutating call; false (and the power cut) if it is the one.
  bool Tick();
  static constexpr size_t kSectorBytes = 512;
  static std::string Parent(const std::string& path);
  uint64_t UsedBytes() const;

  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  std::map<std::string, std::shared_ptr<File>> entries_;  // path -> file (current)
  std::map<std::string, std::shared_ptr<File>> durable_;  // as of each dir's last sync
  std::set<std::string> dirs_;
  std::set<std::string> locked_;
  std::map<int, Handle> handles_;
  int next_handle_ = 3;
  bool down_ = false;
  uint64_t calls_ = 0;
  uint64_t crash_at_ = 0;
  bool keep_torn_ = false;
  uint64_t syncs_ = 0;
  uint64_t fail_sync_at_ = 0;
  int fail_sync_err_ = 0;
  uint64_t capacity_ = UINT64_MAX;
  bool short_writes_ = false;
};

}  // namespace distkv::storage
