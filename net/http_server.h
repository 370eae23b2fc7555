// HttpServer: an HTTP/1.1 server on one libuv loop.
//
// Each connection owns an llhttp parser that is fed every read as it comes,
// so a request may arrive split at any byte and several may arrive in one
// read (pipelining). Each parsed request is handed to the handler with a
// Responder; the handler answers now or later (after a group commit, after a
// forward). Answers leave in request order: a connection keeps a queue of
// response slots and writes the ready prefix of it with one uv_write.
//
// Limits (ServerLimits) are enforced by the server itself with the status
// code that means them, a JSON error body (MakeErrorResponse) and
// `Connection: close`: URL 414, header bytes 431, body 413, PUT/POST without
// a length 411, malformed request 400. A connection that sends no complete
// header within header_timeout_ms, or stays idle for idle_timeout_ms, is
// closed. Back-pressure: while a connection has max_pipelined unanswered
// requests or max_write_queue_bytes unsent response bytes, it is not read.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/http_message.h"

namespace distkv::net {

struct ServerLimits {
  size_t max_url_bytes = 16 * 1024;            // a 4096-byte key fully %-escaped fits, with a query
  size_t max_header_bytes = 16 * 1024;         // all header lines together
  size_t max_body_bytes = (16u << 20) + 4096;  // a 16 MiB value plus slack
  size_t max_connections = 4096;               // beyond it new connections are closed at once
  uint64_t header_timeout_ms = 10'000;         // time to receive a complete request head
  uint64_t idle_timeout_ms = 60'000;           // keep-alive connection with nothing to do
  // A request body must arrive at min_body_bytes_per_s on average once
  // body_timeout_ms have passed since its head (else 408 and close).
  uint64_t body_timeout_ms = 10'000;
  uint64_t min_body_bytes_per_s = 16 * 1024;
  uint64_t shutdown_timeout_ms = 5'000;     // Shutdown closes connections still busy after this
  size_t max_pipelined = 256;               // unanswered requests before reading pauses
  size_t max_write_queue_bytes = 8u << 20;  // unsent bytes before reading pauses
  size_t max_staged_bytes = 128u << 20;     // request bodies held until answered (see above)
};

class TlsContext;

struct ServerCounters {
  uint64_t connections_accepted = 0;
  uint64_t connections_rejected = 0;  // over max_connections
  uint64_t connections_current = 0;
  uint64_t requests = 0;
  uint64_t parse_errors = 0;         // 400/411/413/414/431 answered by the server itself
  uint64_t timeouts = 0;             // connections closed by header or idle timeout
  uint64_t backpressure_pauses = 0;  // times a connection stopped being read
  uint64_t tls_failures = 0;         // TLS handshakes or records refused (HTTPS only)
  uint64_t staged_bytes = 0;         // request bodies held now (see "Staged bytes" above)
  uint64_t staged_bytes_peak = 0;    // the most ever held at once
  uint64_t staging_waits = 0;        // requests that waited, unread, for room
};

class ServerConnection;

// The way a handler answers one request. Cheap to copy; answer exactly once
// (Send, or BeginStream ... EndStream). If the connection has gone away,
// the calls do nothing.
class Responder {
 public:
  Responder() = default;
  void Send(HttpResponse&& response);

  // Streaming (long-lived) responses: the head goes out with
  // Transfer-Encoding: chunked, then each WriteChunk is one chunk.
  void BeginStream(HttpResponse&& head);
  void WriteChunk(std::string_view data);
  void EndStream();
  // Bytes queued on the connection and not yet written (for back-pressure).
  size_t queued_bytes() const;
  bool alive() const;
  // Called once when the connection closes (not called if it already has).
  void OnClose(std::function<void()> fn);

 private:
  friend class ServerConnection;
  struct Slot;
  explicit Responder(std::shared_ptr<Slot> slot) : slot_(std::move(slot)) {}
  std::shared_ptr<Slot> slot_;
};

class HttpServer {
 public:
  using Handler = std::function<void(HttpRequest& request, Responder responder)>;

  HttpServer(uv_loop_t* loop, const ServerLimits& limits, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Headers added to every response, the server's own errors included
  // (the node uses it for X-Distkv-Shard). A response that sets the same
  // header itself (a forwarded answer) keeps its own value.
  void AddResponseHeader(std::string name, std::string value);

  // Serves HTTPS only (call before Listen): every connection starts with a
  // TLS handshake (net/tls_session.h); a plain HTTP request gets a plain 400
  // and the connection closes.
  void EnableTls(std::shared_ptr<TlsContext> tls);
  // Where the server reports what an operator must see (a refused TLS
  // handshake and why). Never called with request contents.
  void SetLog(std::function<void(std::string_view line)> log);
  // Requests for which exempt() holds never wait for room under
  // max_staged_bytes (their bodies are still counted). A node exempts what
  // its peers forward, which their own caps bound: two nodes forwarding to
  // each other must not wait for each other's room.
  void SetStagingExempt(std::function<bool(const HttpRequest& request)> exempt);

  // Binds and listens; returns 0 or a libuv error code (uv_strerror names it).
  int Listen(const std::string& host, int port);
  // The port actually bound by Listen (the kernel's choice when port was 0).
  int port() const;
  // Stops accepting, lets in-flight requests finish (their responses are
  // written), closes every connection, then calls on_closed.
  void Shutdown(std::function<void()> on_closed);

  const ServerCounters& counters() const;
  const ServerLimits& limits() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distkv::net
