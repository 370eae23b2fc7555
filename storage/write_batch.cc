// WriteBatchImpl::Run; the plan it executes is described in write_batch.h.
#include "storage/write_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "storage/file_util.h"

namespace distkv::storage {

int WriteBatchImpl::Inject(std::string_view step) const {
  return (fault_hook_ && *fault_hook_) ? (*fault_hook_)(step) : 0;
}

Status WriteBatchImpl::Run() {
  ran = true;
  bool created_any = false;
  for (BatchFile& f : files) {
    if (f.fd < 0) {
      int err = Inject("create");
      int fd = err ? -1 : ::open(f.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) return Status::FromErrno(err ? err : errno, "create " + f.path);
      f.fd = fd;
      f.created = true;
      created_any = true;
    }
    if (f.data && !f.data->empty()) {
      if (int err = Inject("write")) return Status::FromErrno(err, "write " + f.path);
      Status s = PwriteAll(f.fd, f.data->data(), f.data->size(), f.offset, f.path);
      if (!s.ok()) return s;
    }
    if (f.sync) {
      int err = Inject("sync");
      if (err == 0 && ::fdatasync(f.fd) != 0) err = errno;
      syncs_done++;
      if (err) return Status::FromErrno(err, "fdatasync " + f.path);
    }
  }
  if (created_any) {
    // The new segment's directory entry must be as durable as its data.
    int err = Inject("sync");
    if (err == 0 && ::fsync(dir_fd_) != 0) err = errno;
    syncs_done++;
    if (err) return Status::FromErrno(err, "fsync of the store directory");
  }
  return Status::OK();
}

}  // namespace distkv::storage
