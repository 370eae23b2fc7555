// Io::Posix(): the real file system, one system call per method. EINTR is
// retried here; short reads and writes are passed up (file_util.h loops).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/io.h"

namespace distkv::storage {

namespace {

class PosixIo final : public Io {
 public:
  int Open(const std::string& path, int flags, int* handle) override {
    int oflags = O_RDWR | O_CLOEXEC;
    if (flags & kCreate) oflags |= O_CREAT;
    if (flags & kTruncate) oflags |= O_TRUNC;
    int fd = ::open(path.c_str(), oflags, 0644);
    if (fd < 0) return errno;
    *handle = fd;
    return 0;
  }

  int OpenDir(const std::string& path, int* handle) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    *handle = fd;
    return 0;
  }

  void Close(int handle) override { ::close(handle); }

  int Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) override {
    for (;;) {
      ssize_t w = ::pwrite(handle, data, n, static_cast<off_t>(off));
      if (w >= 0) {
        *done = static_cast<size_t>(w);
        return 0;
      }
      if (errno != EINTR) return errno;
    }
  }

  int Read(int handle, char* data, size_t n, uint64_t off, size_t* done) override {
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(handle, data + got, n - got, static_cast<off_t>(off + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    *done = got;
    return 0;
  }

  int Sync(int handle) override { return ::fdatasync(handle) == 0 ? 0 : errno; }
  int SyncDir(int handle) override { return ::fsync(handle) == 0 ? 0 : errno; }

  int Truncate(int handle, uint64_t size) override {
    return ::ftruncate(handle, static_cast<off_t>(size)) == 0 ? 0 : errno;
  }

  int Size(int handle, uint64_t* size) override {
    struct stat st;
    if (::fstat(handle, &st) != 0) return errno;
    *size = static_cast<uint64_t>(st.st_size);
    return 0;
  }

  int Rename(const std::string& from, const std::string& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
  }

  int Unlink(const std::string& path) override { return ::unlink(path.c_str()) == 0 ? 0 : errno; }

  int CreateDirs(const std::string& path) override {
    for (size_t i = 1; i <= path.size(); i++) {
      if (i != path.size() && path[i] != '/') continue;
      std::string prefix = path.substr(0, i);
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return errno;
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  }

  int ListDir(const std::string& path, std::vector<std::string>* names) override {
    DIR* d = ::opendir(path.c_str());
    if (!d) return errno;
    names->clear();
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string n(e->d_name);
      if (n != "." && n != "..") names->push_back(std::move(n));
    }
    const int err = errno;
    ::closedir(d);
    return err;
  }

  int Lock(const std::string& path, int* handle) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      return err;
    }
    *handle = fd;
    return 0;
  }
};

}  // namespace

Io* Io::Posix() {
  static PosixIo* io = new PosixIo;
  return io;
}

}  // namespace distkv::storage
