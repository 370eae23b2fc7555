// DeadlineCheck: whether a connection's deadline has passed, or only seems
// to because this process was not running.
//
// libuv runs due timers before it polls for I/O. After the process was
// paused (SIGSTOP, a VM pause) or one turn of the loop ran long, a
// connection's timer therefore fires before the bytes its peer sent
// meanwhile are read, and a peer that kept to its deadline looks silent. So
// a deadline that has passed is checked against the socket: if the kernel
// holds bytes not read yet (FIONREAD), the peer has spoken, and the
// connection reads them before it judges again. What "again" means is the
// connection's: a server connection re-checks once the read has run, an
// outbound request gets its timeout once more. Each deadline is forgiven
// this way at most once (the caller says whether it was), so a peer
// trickling bytes cannot hold a connection open by them.
//
// Both ServerConnection and OutboundConnection judge their deadlines here.
// The socket is asked (one syscall) only for a deadline that has passed and
// may still be forgiven, and at most once per check.
#pragma once

#include <uv.h>

#include <cstdint>

namespace distkv::net {

class DeadlineCheck {
 public:
  enum class Verdict {
    kAhead,      // not due yet
    kPeerSpoke,  // due, but the peer's bytes wait unread: read them first
    kPassed,     // due, and the peer has not spoken: a timeout
  };

  // One check, at loop time now, of deadlines of the connection on socket.
  DeadlineCheck(const uv_tcp_t* socket, uint64_t now) : socket_(socket), now_(now) {}

  // may_forgive: this deadline has not been forgiven for unread bytes yet.
  Verdict Check(uint64_t deadline, bool may_forgive);

 private:
  // Bytes the kernel holds for the socket that were not read yet.
  bool BytesWaiting();

  const uv_tcp_t* socket_;
  uint64_t now_;
  int unread_ = -1;  // BytesWaiting's answer: -1 until asked
};

}  // namespace distkv::net
