// RawConnection: one plain POSIX TCP socket for the tests that must control
// the bytes themselves — a thousand requests pipelined in one write, a
// request cut at odd byte boundaries, a header trickled a byte at a time,
// requests the outbound client would never produce (no Content-Length).
//
// Writes never block the reader: Exchange() keeps the socket non-blocking
// and polls for both directions, so a server that stops reading until its
// answers are taken (back-pressure) cannot deadlock the test. Answers are
// parsed with llhttp in response mode, the parser the project builds in.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_message.h"

namespace distkv::clustertest {

struct RawResponse {
  int status = 0;
  std::vector<net::Header> headers;
  std::string body;
  std::string Header(std::string_view name) const;
};

class RawConnection {
 public:
  RawConnection();
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Connects to "host:port" (bounded wait). False, with error() set, on failure.
  bool Connect(const std::string& address);

  // Writes all of bytes in `chunk`-byte pieces (0: as one piece) while reading
  // answers, then keeps reading until `responses` answers in total have been
  // parsed, the peer closes, or timeout_ms passes. Returns false if the
  // write failed (peer closed or reset).
  bool Exchange(std::string_view bytes, size_t responses, int timeout_ms, size_t chunk = 0);

  // Writes bytes without waiting for answers. False if the peer is gone.
  bool Send(std::string_view bytes);

  // Parses the answers that have arrived, without waiting. (Exchange with a
  // 1 ms timeout may return before it polls once.)
  void ReadArrived() { ReadSome(0); }

  // Reads until the peer closes the connection or timeout_ms passes; answers
  // that arrive meanwhile are parsed. True if the peer closed (EOF or reset).
  bool WaitForClose(int timeout_ms);

  // Answers parsed so far, in arrival order.
  const std::vector<RawResponse>& responses() const;
  bool peer_closed() const;
  bool parse_failed() const;  // the peer's bytes were not valid HTTP
  const std::string& error() const;
  void Close();

 private:
  struct Parser;
  // One poll + read step; false when nothing more can be read (closed).
  bool ReadSome(int timeout_ms);

  int fd_ = -1;
  bool peer_closed_ = false;
  std::string error_;
  std::unique_ptr<Parser> parser_;
};

// "GET <target> HTTP/1.1" with a Host header and, for a body, its length.
std::string RawRequest(std::string_view method, std::string_view target,
                       std::string_view body = "");

}  // namespace distkv::clustertest
