// ThrottledIo: passes every call to another Io, but makes writes to files
// take at least as long as a disk of the given throughput would: after each
// Write of n bytes it sleeps n / bytes_per_s seconds. Everything else goes
// through untouched.
//
// It stands in for a slow disk in tests and benchmarks of what a node does
// while its writes wait (back-pressure, memory under load); `distkv serve
// --slow-disk BYTES_PER_S` puts it under the node's store. Writes come from
// the thread that runs a batch, so only that thread sleeps, never the loop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/io.h"

namespace distkv::storage {

class ThrottledIo final : public Io {
 public:
  // base is not owned; bytes_per_s > 0.
  ThrottledIo(Io* base, uint64_t bytes_per_s) : base_(base), bytes_per_s_(bytes_per_s) {}

  int Open(const std::string& path, int flags, int* handle) override {
    return base_->Open(path, flags, handle);
  }
  int OpenDir(const std::string& path, int* handle) override {
    return base_->OpenDir(path, handle);
  }
  void Close(int handle) override { base_->Close(handle); }
  int Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) override;
  int Read(int handle, char* data, size_t n, uint64_t off, size_t* done) override {
    return base_->Read(handle, data, n, off, done);
  }
  int Sync(int handle) override { return base_->Sync(handle); }
  int SyncDir(int handle) override { return base_->SyncDir(handle); }
  int Truncate(int handle, uint64_t size) override { return base_->Truncate(handle, size); }
  int Size(int handle, uint64_t* size) override { return base_->Size(handle, size); }
  int Rename(const std::string& from, const std::string& to) override {
    return base_->Rename(from, to);
  }
  int Unlink(const std::string& path) override { return base_->Unlink(path); }
  int CreateDirs(const std::string& path) override { return base_->CreateDirs(path); }
  int ListDir(const std::string& path, std::vector<std::string>* names) override {
    return base_->ListDir(path, names);
  }
  int Lock(const std::string& path, int* handle) override { return base_->Lock(path, handle); }

 private:
  Io* base_;
  uint64_t bytes_per_s_;
};

}  // namespace distkv::storage
