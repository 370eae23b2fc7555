// System-call wrappers; see file_util.h.
#include "storage/file_util.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

namespace distkv::storage {

namespace {

std::string Context(std::string_view op, std::string_view name) {
  std::string s(op);
  s += ' ';
  s += name;
  return s;
}

}  // namespace

Status PwriteAll(int fd, const char* data, size_t n, uint64_t off, std::string_view name) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, Context("write", name));
    }
    data += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return Status::OK();
}

Status PreadSome(int fd, char* data, size_t n, uint64_t off, size_t* got, std::string_view name) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, data + done, n - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, Context("read", name));
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  *got = done;
  return Status::OK();
}

Status PreadExact(int fd, char* data, size_t n, uint64_t off, std::string_view name) {
  size_t got;
  Status s = PreadSome(fd, data, n, off, &got, name);
  if (!s.ok()) return s;
  if (got != n) {
    return Status::Corruption(Context("short read of", name) + " at offset " + std::to_string(off));
  }
  return Status::OK();
}

Status FileSize(int fd, uint64_t* size, std::string_view name) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, Context("stat", name));
  *size = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

Status CreateDirs(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("empty directory name");
  for (size_t i = 1; i <= path.size(); i++) {
    if (i != path.size() && path[i] != '/') continue;
    std::string prefix = path.substr(0, i);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, Context("mkdir", prefix));
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, Context("stat", path));
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(path + " is not a directory");
  return Status::OK();
}

Status ListDir(const std::string& path, std::vector<std::string>* names) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return Status::FromErrno(errno, Context("opendir", path));
  names->clear();
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (n != "." && n != "..") names->emplace_back(n);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return Status::FromErrno(err, Context("readdir", path));
  return Status::OK();
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string p(dir);
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

}  // namespace distkv::storage
