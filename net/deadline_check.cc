// DeadlineCheck: a passed deadline against the socket's unread bytes (see
// deadline_check.h).
#include "net/deadline_check.h"

#include <sys/ioctl.h>

namespace distkv::net {

DeadlineCheck::Verdict DeadlineCheck::Check(uint64_t deadline, bool may_forgive) {
  if (deadline > now_) return Verdict::kAhead;
  if (may_forgive && BytesWaiting()) return Verdict::kPeerSpoke;
  return Verdict::kPassed;
}

bool DeadlineCheck::BytesWaiting() {
  if (unread_ < 0) {
    uv_os_fd_t fd;
    int n = 0;
    const bool ok = uv_fileno(reinterpret_cast<const uv_handle_t*>(socket_), &fd) == 0 &&
                    ::ioctl(fd, FIONREAD, &n) == 0;
    unread_ = ok && n > 0 ? 1 : 0;
  }
  return unread_ == 1;
}

}  // namespace distkv::net
