// WriteBatchImpl::Run; the plan it executes is described in write_batch.h.
#include "storage/write_batch.h"

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
      int fd = -1;
      if (err == 0) err = io_->Open(f.path, Io::kCreate | Io::kTruncate, &fd);
      if (err) return Fail(Failure::kCreate, Status::FromErrno(err, "create " + f.path));
      f.fd = fd;
      f.created = true;
      created_any = true;
    }
    if (f.data && !f.data->empty()) {
      if (int err = Inject("write")) {
        return Fail(Failure::kWrite, Status::FromErrno(err, "write " + f.path));
      }
      Status s = PwriteAll(io_, f.fd, f.data->data(), f.data->size(), f.offset, f.path);
      if (!s.ok()) return Fail(Failure::kWrite, s);
    }
    if (f.zero_to > f.zero_from) {
      if (int err = Inject("write")) {
        return Fail(Failure::kWrite, Status::FromErrno(err, "pre-allocate " + f.path));
      }
      Status s = WriteZeros(io_, f.fd, f.zero_from, f.zero_to - f.zero_from, f.path);
      if (s.IsNoSpace()) {
        // Pre-allocation only makes syncs cheaper: on a full disk the data
        // goes on without it, as far as it fits (the filled part is cut;
        // should that fail, zeros after the records are harmless).
        io_->Truncate(f.fd, f.zero_from);
        f.zero_from = f.zero_to = 0;
      } else if (!s.ok()) {
        return Fail(Failure::kWrite, s);
      }
    }
    if (f.trim) {
      const uint64_t end = f.offset + (f.data ? f.data->size() : 0);
      if (int err = io_->Truncate(f.fd, end)) {
        return Fail(Failure::kWrite, Status::FromErrno(err, "trim " + f.path));
      }
    }
    f.written = true;
    if (f.sync) {
      int err = Inject("sync");
      syncs_done++;
      Status s = err ? Status::FromErrno(err, "fdatasync " + f.path) : SyncFile(io_, f.fd, f.path);
      if (!s.ok()) return Fail(Failure::kSync, s);
    }
  }
  if (created_any) {
    // The new segment's directory entry must be as durable as its data.
    int err = Inject("sync");
    syncs_done++;
    Status s =
        err ? Status::FromErrno(err, "fsync of the store directory") : SyncDir(io_, dir_fd_, dir_);
    if (!s.ok()) return Fail(Failure::kSync, s);
  }
  if (manifest) {
    bool uncertain = false;
    int err = Inject("manifest");
    Status s = err ? Status::FromErrno(err, "write MANIFEST")
                   : manifest_writer->Update(*manifest, CopyWriterFields, &uncertain);
    if (!s.ok()) return Fail(uncertain ? Failure::kSync : Failure::kManifest, s);
  }
  return Status::OK();
}

}  // namespace distkv::storage
