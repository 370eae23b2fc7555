// OutboundConnection: the engine behind ClientConnection and HttpClient's
// pool — one keep-alive TCP connection to one peer.
//
// Requests are serialized into an outbox as they are submitted, and the
// outbox is written by a uv_prepare callback, which libuv runs just before it
// next blocks for I/O: every request submitted during one loop iteration
// leaves in one write, never later than that iteration's end. While a write
// is in flight, the outbox waits for its completion. Requests submitted
// before the connection is up wait in the same outbox. Responses come back in request order: a FIFO
// of pending requests is matched against ResponseParser's output, and the callback of the front
// request runs when its response is complete.
//
// Timeouts: one uv_timer per connection. While connecting it is the connect
// timeout. Then each pending request carries a deadline (its send time plus
// its timeout; for streaming requests the deadline moves on with every byte
// received, making it an idle timeout); the timer is armed for the earliest
// deadline and simply re-checks when it fires, so a completing request never
// touches the timer. A request past its deadline fails with kTimeout, and
// the connection is closed: its byte stream cannot be resynchronised. The
// requests pipelined behind it fail with kTimeout too (the peer may or may
// not have applied them), except idempotent ones, which are offered for a
// resend on another connection. A deadline that passes while the peer's
// bytes wait unread in the socket is not a timeout (DeadlineCheck: after a
// pause of the process the timer fires before they are read). Those bytes
// are read first: a stream's deadline moves on as if they had been, and a
// response gets its timeout once more (once).
//
// Lifetime: owners hold a shared_ptr, and the connection holds one to itself
// (self_) from creation until libuv has closed both its handles, so it may
// be dropped by its owner from inside any callback. Every entry point that
// runs user code keeps a local reference and checks closed_ afterwards.
// Every callback runs exactly once: on its response, or on the error that
// closes the connection.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/client_response_parser.h"
#include "net/http_client.h"
#include "net/inline_function.h"
#include "net/ring_queue.h"
#include "net/tls_session.h"

namespace distkv::net {

class OutboundConnection : public std::enable_shared_from_this<OutboundConnection>,
                           private ResponseParser::Sink {
 public:
  // resend is non-null when the request failed with kConnectionLost before a
  // byte of its response arrived, on a connection that had already answered
  // (the peer closed an idle keep-alive connection as we reused it), and the
  // method makes a second attempt harmless: the caller may send *resend again.
  // Room in place for the pool's callback around a ResponseCallback.
  using Callback = InlineFunction<void(ClientResult& result, OutboundRequest* resend), 120>;

  static std::shared_ptr<OutboundConnection> Create(uv_loop_t* loop, const std::string& host,
                                                    int port, const ClientOptions& options);
  ~OutboundConnection() override;

  // Queues the request. If the connection can no longer send, the callback
  // runs at once, before Submit returns.
  void Submit(OutboundRequest&& request, Callback&& callback);
  // Closes the connection; pending callbacks fail with error.
  void Close(ClientError error, const std::string& detail);

  size_t in_flight() const { return in_flight_.size(); }
  // A stream or a may_wait request is pending: nothing queued behind it
  // would be answered before it ends.
  bool exclusive() const { return exclusive_pending_ > 0; }
  // A write (any method but GET and HEAD) is pending: its answer may wait
  // for the peer's disk or replicas, and HTTP answers in order, so a request
  // queued behind it would wait as long.
  bool carries_write() const { return writes_pending_ > 0; }
  bool carries_only_writes() const { return writes_pending_ == in_flight_.size(); }
  // Requests wait in the outbox for this loop turn's write: one submitted
  // now leaves in the same write, at no extra cost.
  bool outbox_waiting() const { return !outbox_.empty(); }
  // Every pending request is still in the outbox: nothing has reached the
  // peer yet, so one submitted now arrives together with all of them.
  bool nothing_sent() const { return unsent_ == in_flight_.size(); }
  bool usable() const { return !closed_ && !draining_; }
  uint64_t responses_completed() const { return responses_completed_; }
  void OnClose(std::function<void()> fn) { on_close_ = std::move(fn); }

 private:
  enum class State { kResolving, kConnecting, kConnected };

  struct InFlightRequest {
    OutboundRequest request;  // kept for on_head/on_body and a possible resend (body moved out)
    Callback callback;
    uint64_t timeout_ms = 0;
    uint64_t deadline = 0;  // loop time (ms); 0 until the request is sent
    bool head_method = false;
    bool write = false;       // counted in writes_pending_
    bool exclusive = false;   // a stream or may_wait: counted in exclusive_pending_
    bool resendable = false;  // a retryable method whose whole request is still here
    bool timed_out = false;
    bool waited_for_read = false;  // its deadline was moved once for unread bytes
  };

  struct WriteReq {
    uv_write_t req;
    OutboundConnection* conn;
    std::vector<std::string> chunks;
    bool raw = false;  // TLS handshake bytes, written outside the outbox's turn
  };

  OutboundConnection(uv_loop_t* loop, const std::string& host, int port,
                     const ClientOptions& options);
  void Start();
  void Connect(const struct sockaddr* addr);
  void Flush();
  void ScheduleFlush();
  void ArmTimer(uint64_t deadline);
  void OnTimer();
  void OnConnected(int status);
  void OnRead(ssize_t nread, const uv_buf_t* buf);
  void OnWritten(WriteReq* req, int status);
  void OnEof(ssize_t status);
  // HTTPS (tls_outbound_connection.cc).
  bool TlsStart();
  void TlsRead(const char* data, size_t len);
  void TlsEncrypt(std::vector<std::string>* chunks);
  void WriteRaw(std::string bytes);
  // Keeps a written (or encrypted) buffer's room for the next write, unless
  // it grew too large.
  static void KeepSpare(std::string* buffer, std::string* spare);
  void Feed(const char* data, size_t len);
  void Shutdown(ClientError error, const std::string& detail, bool allow_resend);
  std::string PeerName() const { return host_header_; }

  ResponseParser::HeaderFilter OnResponseBegin() override;
  ResponseParser::BodyMode OnResponseHead(const HttpResponse& head) override;
  bool OnResponseBody(std::string_view chunk) override;
  bool OnResponseComplete(HttpResponse& response, bool keep_alive) override;

  static void OnConnectCb(uv_connect_t* req, int status);
  static void OnTimerCb(uv_timer_t* timer);
  static void OnFlushCb(uv_prepare_t* prepare);
  static void OnAllocCb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnReadCb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWriteCb(uv_write_t* req, int status);
  static void OnHandleClosedCb(uv_handle_t* handle);
  static void OnResolvedCb(uv_getaddrinfo_t* req, int status, struct addrinfo* res);

  uv_loop_t* loop_;
  std::string host_;
  int port_;
  std::string host_header_;
  ClientOptions options_;

  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_prepare_t flush_;  // active while the outbox waits for the end of the iteration
  uv_connect_t connect_req_;
  int handles_open_ = 0;
  std::shared_ptr<OutboundConnection> self_;  // see the lifetime note above

  State state_ = State::kResolving;
  bool closed_ = false;
  ClientError close_error_ = ClientError::kNone;
  std::string close_detail_;
  bool draining_ = false;  // the peer announced Connection: close
  bool timer_armed_ = false;
  uint64_t timer_due_ = 0;

  RingQueue<InFlightRequest> in_flight_;  // slots reused: no allocation a request
  size_t exclusive_pending_ = 0;          // pending streams (on_body) and may_wait requests
  size_t writes_pending_ = 0;             // pending requests whose method is not GET or HEAD
  size_t unsent_ = 0;                     // pending requests whose bytes are still in outbox_
  std::vector<std::string> outbox_;       // serialized requests not yet handed to libuv
  std::string spare_;                     // an empty buffer with room, from the last write
  bool writing_ = false;
  bool flush_scheduled_ = false;
  ResponseParser parser_;
  std::unique_ptr<TlsSession> tls_;  // HTTPS only
  std::string tls_plain_;            // a read's plaintext (reused)
  std::string tls_spare_;            // the last write's ciphertext buffer (reused)
  std::unique_ptr<char[]> read_buf_;
  uint64_t responses_completed_ = 0;
  std::function<void()> on_close_;
};

}  // namespace distkv::net
