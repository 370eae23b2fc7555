// Fuzz target: the HTTP server's connection (llhttp parsing, pipelining,
// limits, responses, close) fed arbitrary bytes split arbitrarily.
//
// One HttpServer listens on a loopback port for the whole run. Each input is
// cut into chunks (the chunk sizes come from the input's tail, the bytes from
// its head, via FuzzedDataProvider); a plain blocking client socket sends the
// chunks one by one and the loop runs between them, so the server reads them
// as separate reads, split anywhere. The handler answers in three ways chosen
// by the path: at once, streamed (chunked), or later (after the next chunk),
// so responses queue behind unanswered ones. After the input the client
// half-closes, drains what the server wrote, and closes; the server must
// then close its side too. A connection still open 2 s later is reported as
// a crash (a leaked connection), as is any sanitizer finding.
#include <arpa/inet.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "net/http_server.h"

namespace {

using distkv::net::HttpRequest;
using distkv::net::HttpResponse;
using distkv::net::HttpServer;
using distkv::net::Responder;

struct Harness {
  uv_loop_t loop;
  std::unique_ptr<HttpServer> server;
  std::vector<Responder> deferred;
  int port = 0;

  Harness() {
    uv_loop_init(&loop);
    distkv::net::ServerLimits limits;
    limits.max_url_bytes = 256;
    limits.max_header_bytes = 1024;
    limits.max_body_bytes = 4096;
    limits.max_pipelined = 4;
    limits.max_write_queue_bytes = 8192;
    server = std::make_unique<HttpServer>(
        &loop, limits, [this](HttpRequest& req, Responder r) { Handle(req, r); });
    server->AddResponseHeader("X-Fuzz", "1");
    if (server->Listen("127.0.0.1", 0) != 0) abort();
    port = server->port();
  }

  void Handle(HttpRequest& req, Responder r) {
    if (req.path == "/defer") {
      deferred.push_back(std::move(r));
      return;
    }
    HttpResponse resp;
    resp.headers.push_back({"X-Method", req.method});
    if (req.path == "/stream") {
      r.BeginStream(std::move(resp));
      r.WriteChunk(req.body);
      r.WriteChunk(req.target);
      r.EndStream();
      return;
    }
    resp.status = req.path == "/close" ? 503 : 200;
    resp.body = req.body;
    r.Send(std::move(resp));
  }

  void AnswerDeferred() {
    std::vector<Responder> now;
    now.swap(deferred);
    for (Responder& r : now) {
      HttpResponse resp;
      resp.status = 202;
      resp.body = "later";
      r.Send(std::move(resp));
    }
  }

  void Spin(int rounds) {
    for (int i = 0; i < rounds; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  }
};

// Reads what is available without blocking; false at EOF or error.
bool Drain(int fd) {
  char buf[16384];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0) return false;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
}

// A new connection to the harness's server. Hundreds of thousands of runs
// go through the loopback's ephemeral ports: when none is free yet
// (EADDRNOTAVAIL, their TIME_WAIT not over), wait and try again.
int Connect(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  for (int attempt = 0;; ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    const int err = errno;
    if (fd >= 0) close(fd);
    if (err != EADDRNOTAVAIL || attempt == 1000) {
      fprintf(stderr, "cannot connect to the harness's server: %s\n", strerror(err));
      abort();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* h = new Harness();
  FuzzedDataProvider input(data, size);

  const int fd = Connect(h->port);
  h->Spin(2);  // accept

  while (input.remaining_bytes() > 0) {
    size_t n = input.ConsumeIntegralInRange<size_t>(1, 512);
    std::vector<uint8_t> chunk = input.ConsumeBytes<uint8_t>(n);
    if (chunk.empty()) break;
    if (send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) break;  // server closed
    h->Spin(2);
    h->AnswerDeferred();
    h->Spin(1);
    if (!Drain(fd)) break;
  }
  shutdown(fd, SHUT_WR);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  bool open = true;
  while (open && std::chrono::steady_clock::now() < deadline) {
    h->Spin(1);
    h->AnswerDeferred();
    open = Drain(fd);
  }
  close(fd);
  while (h->server->counters().connections_current != 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      fprintf(stderr, "server connection still open 2 s after the client closed\n");
      abort();
    }
    h->Spin(1);
  }
  h->deferred.clear();
  return 0;
}
