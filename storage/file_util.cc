// Io-call wrappers; see file_util.h.
#include "storage/file_util.h"

#include <errno.h>

#include <algorithm>

namespace distkv::storage {

namespace {

std::string Context(std::string_view op, std::string_view name) {
  std::string s(op);
  s += ' ';
  s += name;
  return s;
}

}  // namespace

Status PwriteAll(Io* io, int fd, const char* data, size_t n, uint64_t off, std::string_view name) {
  while (n > 0) {
    size_t w = 0;
    if (int err = io->Write(fd, data, n, off, &w))
      return Status::FromErrno(err, Context("write", name));
    if (w == 0) return Status::FromErrno(EIO, Context("write (no progress)", name));
    data += w;
    n -= w;
    off += w;
  }
  return Status::OK();
}

Status WriteZeros(Io* io, int fd, uint64_t off, uint64_t n, std::string_view name) {
  static constexpr size_t kZeroBytes = 64 << 10;
  static const char kZeros[kZeroBytes] = {};
  while (n > 0) {
    const size_t piece = static_cast<size_t>(std::min<uint64_t>(n, kZeroBytes));
    Status s = PwriteAll(io, fd, kZeros, piece, off, name);
    if (!s.ok()) return s;
    off += piece;
    n -= piece;
  }
  return Status::OK();
}

Status PreadSome(Io* io, int fd, char* data, size_t n, uint64_t off, size_t* got,
                 std::string_view name) {
  if (int err = io->Read(fd, data, n, off, got))
    return Status::FromErrno(err, Context("read", name));
  return Status::OK();
}

Status PreadExact(Io* io, int fd, char* data, size_t n, uint64_t off, std::string_view name) {
  size_t got;
  Status s = PreadSome(io, fd, data, n, off, &got, name);
  if (!s.ok()) return s;
  if (got != n) {
    return Status::Corruption(Context("short read of", name) + " at offset " + std::to_string(off));
  }
  return Status::OK();
}

Status FileSize(Io* io, int fd, uint64_t* size, std::string_view name) {
  if (int err = io->Size(fd, size)) return Status::FromErrno(err, Context("stat", name));
  return Status::OK();
}

Status SyncFile(Io* io, int fd, std::string_view name) {
  if (int err = io->Sync(fd)) return Status::FromErrno(err, Context("fdatasync", name));
  return Status::OK();
}

Status SyncDir(Io* io, int dir_fd, std::string_view name) {
  if (int err = io->SyncDir(dir_fd))
    return Status::FromErrno(err, Context("fsync of directory", name));
  return Status::OK();
}

Status CreateDirs(Io* io, const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("empty directory name");
  if (int err = io->CreateDirs(path)) return Status::FromErrno(err, Context("mkdir", path));
  return Status::OK();
}

Status ListDir(Io* io, const std::string& path, std::vector<std::string>* names) {
  if (int err = io->ListDir(path, names)) return Status::FromErrno(err, Context("list", path));
  return Status::OK();
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string p(dir);
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

Status WriteFileAtomically(Io* io, const std::string& dir, const std::string& name,
                           std::string_view bytes, int dir_fd, bool* dir_sync_failed) {
  if (dir_sync_failed) *dir_sync_failed = false;
  const std::string path = JoinPath(dir, name);
  const std::string tmp = path + ".tmp";
  int fd;
  if (int err = io->Open(tmp, Io::kCreate | Io::kTruncate, &fd)) {
    return Status::FromErrno(err, "create " + tmp);
  }
  Status s = PwriteAll(io, fd, bytes.data(), bytes.size(), 0, tmp);
  if (s.ok()) s = SyncFile(io, fd, tmp);
  io->Close(fd);
  if (s.ok()) {
    if (int err = io->Rename(tmp, path)) s = Status::FromErrno(err, "rename " + tmp);
  }
  if (!s.ok()) {
    io->Unlink(tmp);
    return s;
  }
  if (dir_fd >= 0) s = SyncDir(io, dir_fd, dir);
  if (!s.ok() && dir_sync_failed) *dir_sync_failed = true;
  return s;
}

}  // namespace distkv::storage
