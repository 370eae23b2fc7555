// RefuseConnection: what a server at max_connections does with one more.
//
// The connection is accepted only to be told "503 Service Unavailable" with
// Retry-After, so a client (or its load balancer) backs off instead of
// seeing a reset. The answer is written at once (a fresh socket's buffer
// takes it), the sending side is shut down, and whatever the client sends
// is read and dropped until it closes or kLingerMs pass: closing with its
// request unread would make the kernel send a reset that can destroy the
// 503 before the client reads it. Refused connections cost two handles
// each for at most that second; beyond max_lingering of them at once, more
// are closed straight away.
#pragma once

#include <uv.h>

#include <cstddef>
#include <string>
#include <unordered_set>

namespace distkv::net {

class ConnectionRefuser {
 public:
  static constexpr uint64_t kLingerMs = 1000;
  static constexpr size_t kMaxLingering = 256;

  ConnectionRefuser() = default;
  ~ConnectionRefuser() { CloseAll(); }
  ConnectionRefuser(const ConnectionRefuser&) = delete;
  ConnectionRefuser& operator=(const ConnectionRefuser&) = delete;

  // Accepts the pending connection of listener and refuses it. response is
  // the complete answer (head and body).
  void Refuse(uv_loop_t* loop, uv_stream_t* listener, const std::string& response);
  size_t lingering() const { return lingering_.size(); }
  // Shutdown: closes the refused connections still lingering.
  void CloseAll();

 private:
  struct Refused;
  std::unordered_set<Refused*> lingering_;
};

}  // namespace distkv::net
