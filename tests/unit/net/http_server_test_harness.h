// Test harness for HttpServer: a server on its own uv loop, driven step by
// step from the test's thread, and raw non-blocking TCP clients that send
// exact bytes and parse what comes back. One thread, so tests can look at
// the server's counters and Responders between steps without locks.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_server.h"

namespace distkv::net::test {

// A response as a test sees it.
struct ParsedResponse {
  int status = 0;
  std::vector<Header> headers;
  std::string body;
  bool chunked = false;

  const std::string* header(std::string_view name) const { return FindHeader(headers, name); }
};

// Parses one response at the front of data. head_request: the answer to a
// HEAD (no body follows). eof: the connection has ended (a body without
// framing runs to it). Returns bytes consumed, or 0 if incomplete.
inline size_t ParseResponse(std::string_view data, bool head_request, bool eof,
                            ParsedResponse* out) {
  *out = ParsedResponse();
  const size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return 0;
  std::string_view head = data.substr(0, head_end + 2);
  size_t line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") return 0;
  out->status = std::stoi(std::string(status_line.substr(9, 3)));
  size_t pos = line_end + 2;
  while (pos < head.size()) {
    const size_t end = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, end - pos);
    const size_t colon = line.find(':');
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    out->headers.push_back(Header{std::string(line.substr(0, colon)), std::string(value)});
    pos = end + 2;
  }
  size_t consumed = head_end + 4;
  const bool no_body =
      head_request || out->status < 200 || out->status == 204 || out->status == 304;
  if (no_body) return consumed;
  const std::string* te = out->header("Transfer-Encoding");
  const std::string* cl = out->header("Content-Length");
  if (te != nullptr && *te == "chunked") {
    out->chunked = true;
    for (;;) {
      const size_t size_end = data.find("\r\n", consumed);
      if (size_end == std::string_view::npos) return 0;
      const size_t size =
          std::stoul(std::string(data.substr(consumed, size_end - consumed)), nullptr, 16);
      if (data.size() < size_end + 2 + size + 2) return 0;
      if (size == 0) return size_end + 4;  // no trailers are sent
      out->body.append(data.substr(size_end + 2, size));
      consumed = size_end + 2 + size + 2;
    }
  }
  if (cl != nullptr) {
    const size_t len = std::stoul(*cl);
    if (data.size() < consumed + len) return 0;
    out->body.assign(data.substr(consumed, len));
    return consumed + len;
  }
  if (!eof) return 0;
  out->body.assign(data.substr(consumed));
  return data.size();
}

class TestServer {
 public:
  TestServer(const ServerLimits& limits, HttpServer::Handler handler) {
    uv_loop_init(&loop_);
    server_ = std::make_unique<HttpServer>(&loop_, limits, std::move(handler));
    REQUIRE(server_->Listen("127.0.0.1", 0) == 0);
    REQUIRE(server_->port() > 0);
  }

  ~TestServer() {
    if (!shutting_down_) BeginShutdown();
    CHECK(RunUntil([this] { return closed_; }));
    server_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&loop_) == 0);
  }

  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  // Starts the server's Shutdown; closed() turns true on its callback.
  void BeginShutdown() {
    shutting_down_ = true;
    server_->Shutdown([this] { closed_ = true; });
  }
  bool closed() const { return closed_; }

  HttpServer& server() { return *server_; }
  const ServerCounters& counters() const { return server_->counters(); }
  int port() const { return server_->port(); }
  uv_loop_t* loop() { return &loop_; }

  // One non-blocking turn of the loop.
  void Step() { uv_run(&loop_, UV_RUN_NOWAIT); }

  // Runs the loop until done() holds; false if it did not within limit_ms
  // (a safety net against hanging, not a timing assertion).
  bool RunUntil(const std::function<bool()>& done, int limit_ms = 10000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
    for (;;) {
      Step();
      if (done()) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      pollfd p{uv_backend_fd(&loop_), POLLIN, 0};
      int timeout = uv_backend_timeout(&loop_);
      if (timeout < 0 || timeout > 2) timeout = 2;
      poll(&p, 1, timeout);
    }
  }

  // Runs the loop for about ms milliseconds.
  void RunFor(int ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    RunUntil([until] { return std::chrono::steady_clock::now() >= until; }, ms + 1000);
  }

 private:
  uv_loop_t loop_;
  std::unique_ptr<HttpServer> server_;
  bool shutting_down_ = false;
  bool closed_ = false;
};

// A raw TCP client talking to a TestServer.
class RawClient {
 public:
  // rcvbuf > 0 shrinks the receive buffer (for back-pressure tests).
  explicit RawClient(TestServer* server, int rcvbuf = 0) : server_(server) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    if (rcvbuf > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~RawClient() { Close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  // Sends all of data, letting the server run whenever the socket is full.
  // False if the connection failed.
  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        server_->Step();
        Poll();
      } else {
        return false;
      }
    }
    return true;
  }

  // Reads whatever has arrived.
  void Poll() {
    char buf[65536];
    for (;;) {
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        received_.append(buf, static_cast<size_t>(n));
      } else if (n == 0) {
        eof_ = true;
        return;
      } else {
        if (errno != EAGAIN && errno != EWOULDBLOCK) eof_ = true;
        return;
      }
    }
  }

  // The responses complete so far; heads[i] marks the i-th as a HEAD answer.
  std::vector<ParsedResponse> Responses(const std::vector<bool>& heads = {}) const {
    std::vector<ParsedResponse> out;
    std::string_view data = received_;
    for (;;) {
      ParsedResponse r;
      const bool head = out.size() < heads.size() && heads[out.size()];
      const size_t used = ParseResponse(data, head, eof_, &r);
      if (used == 0) break;
      data.remove_prefix(used);
      out.push_back(std::move(r));
      if (data.empty()) break;
    }
    return out;
  }

  // Runs the server until n responses (or the end of the connection) arrived.
  std::vector<ParsedResponse> Await(size_t n, const std::vector<bool>& heads = {}) {
    server_->RunUntil([&] {
      Poll();
      return eof_ || Responses(heads).size() >= n;
    });
    return Responses(heads);
  }

  // Runs the server until the connection ends; true if it did.
  bool AwaitEof() {
    return server_->RunUntil([&] {
      Poll();
      return eof_;
    });
  }

  const std::string& received() const { return received_; }
  bool eof() const { return eof_; }
  int fd() const { return fd_; }

 private:
  TestServer* server_;
  int fd_ = -1;
  std::string received_;
  bool eof_ = false;
};

// A handler that answers every request at once with
// "<method> <target> <body>" and the request's X-Tag header echoed.
inline HttpServer::Handler EchoHandler() {
  return [](HttpRequest& request, Responder responder) {
    HttpResponse response;
    response.body = request.method + " " + request.target + " " + request.body;
    if (const std::string* tag = request.header("X-Tag")) response.SetHeader("X-Tag", *tag);
    responder.Send(std::move(response));
  };
}

}  // namespace distkv::net::test
