// ServerContext: what the connections of one HttpServer share — limits,
// counters, the handler, the list of live connections, one read buffer, and
// the batching of answers into writes.
//
// Answers given while a read is being parsed are flushed when the parse
// ends; answers given from elsewhere (a timer, a group commit) are flushed
// in the loop's check phase, so a batch of them costs one write. The check
// hook does the flushing; an idle hook only keeps the loop from blocking in
// poll while flushes are scheduled from outside the poll phase. Neither hook
// keeps the loop alive on its own.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "net/connection_refusal.h"
#include "net/http_server.h"

namespace distkv::net {

class ServerConnection;

class ServerContext {
 public:
  ServerContext(uv_loop_t* loop, const ServerLimits& limits, HttpServer::Handler handler);
  virtual ~ServerContext();

  uv_loop_t* loop() const { return loop_; }
  const ServerLimits& limits() const { return limits_; }
  ServerCounters& counters() { return counters_; }
  const ServerCounters& counters() const { return counters_; }
  const HttpServer::Handler& handler() const { return handler_; }
  // "Name: value\r\n" lines written into every response.
  std::string& extra_headers() { return extra_headers_; }
  bool draining() const { return draining_; }
  // Loop time by which a draining server closes the connections left.
  uint64_t drain_deadline() const { return drain_deadline_; }

  // Accepts one pending connection of listener, or closes it at once when
  // the server is full.
  void Accept(uv_stream_t* listener);

  // Connection bookkeeping.
  ServerConnection* first_connection() const { return first_; }
  void Link(ServerConnection* c);
  void Unlink(ServerConnection* c);

  // Flushes c in this loop iteration's check phase.
  void ScheduleFlush(ServerConnection* c);
  void CancelFlush(ServerConnection* c);

  // HTTPS: the TLS settings every connection starts a session with.
  const std::shared_ptr<TlsContext>& tls() const { return tls_; }
  void set_tls(std::shared_ptr<TlsContext> tls) { tls_ = std::move(tls); }
  void set_log(std::function<void(std::string_view)> log) { log_ = std::move(log); }
  void Log(std::string_view line) const {
    if (log_) log_(line);
  }
  // Staged bytes (see http_server.h). TakeStaged reserves room for a body of
  // `bytes` for c and returns true, or queues c and returns false; c is then
  // told by StagingAdmitted() once its turn comes and the room is reserved.
  // A request that may not wait (exempt) always gets its room.
  bool TakeStaged(ServerConnection* c, size_t bytes, bool exempt);
  // More bytes for a body already admitted (chunked bodies).
  void GrowStaged(size_t bytes);
  // Frees room and admits the waiters that now fit, in order.
  void ReleaseStaged(size_t bytes);
  // c no longer waits (it closes, or abandons its request).
  void ForgetStagingWaiter(ServerConnection* c);
  const std::function<bool(const HttpRequest&)>& staging_exempt() const { return staging_exempt_; }
  void set_staging_exempt(std::function<bool(const HttpRequest&)> f) {
    staging_exempt_ = std::move(f);
  }

  // A new connection's id (HttpRequest::connection_id); never 0.
  uint64_t NextConnectionId() { return ++last_connection_id_; }

  // Read buffer lent to whichever connection is being read (one loop thread).
  char* read_buffer() { return read_buffer_.get(); }
  static constexpr size_t kReadBufferSize = 64 * 1024;

 protected:
  // Shutdown: no new requests; in-flight ones are answered; hooks closed.
  void BeginDrain();
  // Called from a connection's close callback after it was unlinked.
  virtual void ConnectionGone() {}
  // Called once both loop hooks are closed (after BeginDrain).
  virtual void HooksClosed() {}
  bool hooks_open() const { return check_ != nullptr && !hooks_closing_; }
  bool hooks_alive() const { return check_ != nullptr || idle_ != nullptr; }
  void CloseHooks();

 private:
  static void OnCheck(uv_check_t* handle);
  static void OnCheckClosed(void* data);
  static void OnIdleClosed(void* data);

  uv_loop_t* loop_;
  ServerLimits limits_;
  ServerCounters counters_;
  HttpServer::Handler handler_;
  std::string extra_headers_;
  std::shared_ptr<TlsContext> tls_;
  std::function<void(std::string_view)> log_;
  std::function<bool(const HttpRequest&)> staging_exempt_;
  struct StagingWaiter {
    ServerConnection* conn;
    size_t bytes;
  };
  std::deque<StagingWaiter> staging_waiters_;
  bool draining_ = false;
  uint64_t last_connection_id_ = 0;
  uint64_t drain_deadline_ = 0;
  ServerConnection* first_ = nullptr;
  std::vector<ServerConnection*> flush_queue_;
  std::vector<ServerConnection*> flushing_;  // flush_queue_ being processed (kept for its capacity)
  bool in_check_ = false;
  uv_check_t* check_ = nullptr;  // both non-null until their close callbacks ran
  uv_idle_t* idle_ = nullptr;
  bool hooks_closing_ = false;
  std::unique_ptr<char[]> read_buffer_;
  ConnectionRefuser refuser_;

  friend class ServerConnection;  // reports its end (ConnectionGone)
};

}  // namespace distkv::net
