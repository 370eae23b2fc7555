// Helpers shared by the storage tests: a temporary directory that removes
// itself, shortcuts for opening a store and reading a file's bytes, and a
// way to make a cleanly closed store look crashed.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "storage/io.h"
#include "storage/io_wrapper.h"
#include "storage/manifest.h"
#include "storage/store.h"

namespace distkv::storage::testing {

class TempDir {
 public:
  // Under parent, or the system's temporary directory.
  explicit TempDir(const std::filesystem::path& parent = std::filesystem::temp_directory_path()) {
    std::string tmpl = (parent / "distkv-storage-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline Options TestOptions(const std::string& dir, std::vector<std::string>* log = nullptr) {
  Options o;
  o.dir = dir;
  o.fsync = FsyncMode::kNever;  // tests check logic; durability is the OS's business here
  if (log) o.log = [log](std::string_view line) { log->emplace_back(line); };
  return o;
}

inline std::unique_ptr<Store> MustOpen(const Options& o) {
  std::unique_ptr<Store> s;
  Status st = Store::Open(o, &s);
  INFO(st.ToString());
  REQUIRE(st.ok());
  return s;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Rewrites dir's MANIFEST as a crash would have left it: the store still
// open, in the given fsync mode (the high-water mark stays as it was).
inline void MarkCrashed(const std::string& dir, FsyncMode mode = FsyncMode::kAlways) {
  Manifest m;
  bool found = false;
  REQUIRE(ReadManifest(Io::Posix(), dir, &m, &found).ok());
  REQUIRE(found);
  m.clean = false;
  m.open_mode = mode;
  int fd;
  REQUIRE(Io::Posix()->OpenDir(dir, &fd) == 0);
  REQUIRE(WriteManifest(Io::Posix(), dir, fd, m).ok());
  Io::Posix()->Close(fd);
}

// Passes every call on (by default to the real file system) and counts what
// is read: the bytes, and the largest single read.
class ReadCountingIo : public IoWrapper {
 public:
  explicit ReadCountingIo(Io* base = Io::Posix()) : IoWrapper(base) {}
  int Read(int handle, char* data, size_t n, uint64_t off, size_t* done) override {
    max_read = std::max(max_read, n);
    const int err = IoWrapper::Read(handle, data, n, off, done);
    bytes_read += *done;
    return err;
  }
  uint64_t bytes_read = 0;
  size_t max_read = 0;
};

// Whether any of the store's log lines (TestOptions(dir, &log)) contains word.
inline bool LogMentions(const std::vector<std::string>& log, std::string_view word) {
  for (const std::string& line : log) {
    if (line.find(word) != std::string::npos) return true;
  }
  return false;
}

// The value of key, or "<absent>".
inline std::string GetOr(Store& s, std::string_view key) {
  std::string v;
  Status st = s.Get(key, &v);
  if (st.IsNotFound()) return "<absent>";
  REQUIRE(st.ok());
  return v;
}

}  // namespace distkv::storage::testing
