// Status's out-of-line parts: errno mapping and printing.
#include "storage/status.h"

#include <cerrno>
#include <cstring>

namespace distkv::storage {

namespace {

std::string_view CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk:
      return "OK";
    case Status::Code::kNotFound:
      return "NotFound";
    case Status::Code::kCorruption:
      return "Corruption";
    case Status::Code::kIOError:
      return "IOError";
    case Status::Code::kNoSpace:
      return "NoSpace";
    case Status::Code::kInvalidArgument:
      return "InvalidArgument";
    case Status::Code::kBusy:
      return "Busy";
    case Status::Code::kIncomplete:
      return "Incomplete";
  }
  return "Unknown";
}

}  // namespace

Status Status::FromErrno(int err, std::string_view context) {
  // strerror_r, not strerror: batches fail on worker threads.
  char buf[128];
  const char* text = strerror_r(err, buf, sizeof(buf));
  std::string msg(context);
  msg += ": ";
  msg += text;
  if (err == ENOSPC || err == EDQUOT) return NoSpace(msg);
  return IOError(msg);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code_));
  if (!message().empty()) {
    out += ": ";
    out += message();
  }
  return out;
}

}  // namespace distkv::storage
