// IoWrapper: an Io that passes every call to another Io. The layers a node
// can put under its store for tests and benchmarks (a slow disk, a journal of
// what was synced, a disk whose syncs fail) each change one or two calls;
// they derive from this and override only those, so a new Io call is added
// in one place. (LevelDB's EnvWrapper plays the same role.)
#pragma once

#include <string>
#include <vector>

#include "storage/io.h"

namespace distkv::storage {

class IoWrapper : public Io {
 public:
  // base is not owned and must outlive the wrapper.
  explicit IoWrapper(Io* base) : base_(base) {}

  int Open(const std::string& path, int flags, int* handle) override {
    return base_->Open(path, flags, handle);
  }
  int OpenDir(const std::string& path, int* handle) override {
    return base_->OpenDir(path, handle);
  }
  void Close(int handle) override { base_->Close(handle); }
  int Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) override {
    return base_->Write(handle, data, n, off, done);
  }
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

 protected:
  Io* base() const { return base_; }

 private:
  Io* base_;
};

}  // namespace distkv::storage
