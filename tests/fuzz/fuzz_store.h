// What the fuzz targets of the storage engine share: a check that aborts
// with what failed (libFuzzer keeps the input that got there), a directory
// on the in-memory FaultyIo holding the files an input describes (no disk:
// thousands of runs a second), and the last test of any store that opened
// on fuzzed files: it lists only keys that read back, and it takes a write
// and opens again.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "storage/faulty_io.h"
#include "storage/store.h"

namespace distkv::storage::fuzz {

inline constexpr char kDir[] = "/fuzz";
// The key WriteAndReopen writes, with the value "v".
inline constexpr char kNewKey[] = "fuzz-new-key";

inline void Check(bool ok, const char* what, const Status& s = Status::OK()) {
  if (!ok) {
    fprintf(stderr, "check failed: %s %s\n", what, s.ToString().c_str());
    abort();
  }
}

inline void WriteWhole(Io* io, const std::string& path, const std::string& data) {
  int fd;
  Check(io->Open(path, Io::kCreate | Io::kTruncate, &fd) == 0, "create");
  size_t done = 0;
  Check(io->Write(fd, data.data(), data.size(), 0, &done) == 0 && done == data.size(), "write");
  Check(io->Sync(fd) == 0, "sync");
  io->Close(fd);
}

// The directory kDir on a FaultyIo of its own. Every file written is
// synced; SyncDir makes the directory's entries durable as well, as a store
// leaves them.
struct MemDir {
  MemDir() { Check(io.CreateDirs(kDir) == 0, "mkdir"); }

  std::string Path(const std::string& name) const { return std::string(kDir) + "/" + name; }
  void Write(const std::string& name, const std::string& data) {
    WriteWhole(&io, Path(name), data);
  }
  void SyncDir() {
    int dir_fd;
    Check(io.OpenDir(kDir, &dir_fd) == 0 && io.SyncDir(dir_fd) == 0, "sync dir");
    io.Close(dir_fd);
  }
  // Options for a store on this directory that syncs every commit.
  Options StoreOptions(uint64_t segment_bytes) {
    Options options;
    options.dir = kDir;
    options.io = &io;
    options.fsync = FsyncMode::kAlways;
    options.segment_bytes = segment_bytes;
    return options;
  }

  FaultyIo io;
};

// Every key the store lists, with its value; each must read back the same.
inline std::map<std::string, std::string> Scan(Store* store) {
  std::map<std::string, std::string> kv;
  Status s = store->ForEach(
      [&](std::string_view k, std::string_view v, uint64_t) { kv[std::string(k)] = v; });
  Check(s.ok(), "ForEach", s);
  for (const auto& [k, v] : kv) {
    std::string got;
    s = store->Get(k, &got);
    Check(s.ok() && got == v, "every listed key reads back", s);
  }
  return kv;
}

// Writes kNewKey = "v" to an open store, commits it, closes the store and
// opens it again (without repair) into *store. Returns the write's LSN.
inline uint64_t WriteAndReopen(Options options, std::unique_ptr<Store>* store) {
  uint64_t lsn = 0;
  Status s = (*store)->Put(kNewKey, "v", &lsn);
  Check(s.ok(), "a store that opened takes a write", s);
  s = (*store)->Flush();
  Check(s.ok(), "the write commits", s);
  store->reset();
  options.repair = false;
  s = Store::Open(options, store);
  Check(s.ok(), "a store that opened once opens again after a write", s);
  return lsn;
}

}  // namespace distkv::storage::fuzz
