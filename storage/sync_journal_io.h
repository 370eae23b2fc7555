// SyncJournalIo: passes every call to another Io and, after each one that
// changes what a power cut would keep, appends a line to a journal file:
//
//   create <path>          a file was created or truncated (nothing of it is synced)
//   write <path> <off> <n> n bytes were written at off (not durable until a sync)
//   sync <path> <size>     <size> bytes of the file are durable, every write before included
//   rename <from> <to>     what was durable under <from> now is under <to>
//   unlink <path>
//
// Tests of real processes use it to simulate a power cut after SIGKILL: the
// page cache survives SIGKILL, so they cut every file back to the size the
// journal says was synced (and remove files never synced) before restarting,
// and zero what was written since the file's last sync within that size (a
// pre-allocated segment is overwritten in place: its size says nothing).
// The journal is opened with O_APPEND and written with one write(2) a line,
// so it is complete whenever the process dies.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "storage/io_wrapper.h"

namespace distkv::storage {

class SyncJournalIo final : public IoWrapper {
 public:
  // base is not owned; ok() is false if the journal cannot be opened.
  SyncJournalIo(Io* base, const std::string& journal_path);
  ~SyncJournalIo() override;
  bool ok() const { return fd_ >= 0; }

  int Open(const std::string& path, int flags, int* handle) override;
  void Close(int handle) override;
  int Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) override;
  int Sync(int handle) override;
  int Rename(const std::string& from, const std::string& to) override;
  int Unlink(const std::string& path) override;

 private:
  void Append(const std::string& line);

  int fd_ = -1;
  std::mutex mu_;
  std::map<int, std::string> paths_;  // handle -> path, for sync lines
};

}  // namespace distkv::storage
