// ServerConnection: one accepted TCP connection of an HttpServer. Its code
// is split by job: server_connection.cc (setup, teardown, reading),
// request_parsing.cc, responder.cc (answers), connection_writing.cc and
// connection_timeouts.cc.
//
// Reading. Every read is fed to the connection's llhttp parser. Callbacks
// gather the request in a reused HttpRequest; on_message_complete pauses the
// parser, so each request is handed to the handler outside llhttp, and the
// bytes after it are parsed only once the handler has returned. When the
// connection has max_pipelined unanswered requests or more than
// max_write_queue_bytes unsent, parsing stops: the rest of the read is kept
// and the socket is no longer read until the queue drains. A request whose
// body finds no room under max_staged_bytes pauses the parser right after
// its head in the same way, until the server admits it (StagingAdmitted);
// the room is given back when the request is answered or abandoned.
//
// Ordering. Each request gets a response slot when its head is complete
// (so an interim "100 Continue" has its place in the order too). Slots wait
// in a FIFO; a flush writes the ready prefix of it with one uv_write, and a
// streamed response at the front sends what it has and keeps its place.
// Answers given while a read is being parsed are flushed when the parse ends;
// answers given from elsewhere (a timer, a group commit) are flushed in the
// loop's check phase, so a batch of them costs one write.
//
// Lifetime. A Responder shares its slot; the slot points back at the
// connection only while it is queued on a live connection, so a Responder
// that outlives either does nothing. Close() detaches every slot, tells
// their OnClose callbacks, and uv_closes both handles; the object is freed
// when the last close callback has run.
//
// Closing. A connection ends gracefully once it will read no more requests
// (Connection: close, HTTP/1.0, an error, shutdown) and everything is
// written: it shuts down its sending side and reads and drops what the
// client still sends for a short while, so the client sees the last response
// instead of a reset. Timeouts use one timer whose deadline depends on what
// the connection is doing (see Deadline()); a deadline that passes while the
// client's bytes wait unread is judged after they are read (DeadlineCheck).
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/http_server.h"
#include "net/response_batch.h"
#include "net/response_writer.h"
#include "net/server_context.h"
#include "net/tls_session.h"

namespace distkv::net {

class ServerConnection;

// The answer to one request, shared by the connection's queue and the
// request's Responder.
struct Responder::Slot {
  enum class State : uint8_t {
    kReceiving,  // head parsed, body still arriving; no Responder yet
    kPending,    // handed to the handler, not answered
    kStreaming,  // BeginStream called, EndStream not yet
    kDone,       // complete; its bytes are in out/body until flushed
  };

  ServerConnection* conn = nullptr;  // non-null only while queued on a live connection
  State state = State::kReceiving;
  bool head_request = false;
  bool http10 = false;
  bool keep_alive = true;    // the client's wish, from the request
  bool chunked = false;      // a stream with chunked framing (else until-close)
  bool close_after = false;  // the connection closes once this response is written
  std::string out;           // bytes ready to write: head, small body, chunks
  std::string body;          // a large body, written from here without a copy
  size_t staged = 0;         // room its request body holds under max_staged_bytes
  std::function<void()> on_close;
};

class ServerConnection {
 public:
  // Takes the pending connection of listener; false if libuv refused it.
  static bool Accept(ServerContext* ctx, uv_stream_t* listener);

  ServerConnection(const ServerConnection&) = delete;
  ServerConnection& operator=(const ServerConnection&) = delete;

  // Writes the ready prefix of the response queue; resumes reading when
  // back-pressure has eased.
  void FlushAndResume();
  // Shutdown: reads no more requests, finishes the dispatched ones, closes.
  void Drain();
  // Closes now; pending responses are dropped and their OnClose run.
  void Close();
  // The server is gone: the connection must not touch it any more.
  void Detach() { ctx_ = nullptr; }
  bool closing() const { return closing_; }

  // Responder entry points (slot->conn == this).
  void Answer(Responder::Slot* slot, HttpResponse&& response);
  void BeginStream(Responder::Slot* slot, HttpResponse&& head);
  void WriteChunk(Responder::Slot* slot, std::string_view data);
  void EndStream(Responder::Slot* slot);
  size_t queued_bytes() const { return unsent_bytes_; }

 private:
  friend class ServerContext;  // the intrusive list and the flush queue
  static constexpr uint64_t kNoDeadline = UINT64_MAX;
  static constexpr uint64_t kLingerMs = 1000;
  static constexpr uint64_t kTlsReleaseIdleMs = 1000;

  explicit ServerConnection(ServerContext* ctx);
  ~ServerConnection();

  // libuv callbacks.
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  static void OnShutdown(uv_shutdown_t* req, int status);
  static void OnTimer(uv_timer_t* timer);
  static void OnHandleClosed(uv_handle_t* handle);

  // llhttp callbacks.
  static const llhttp_settings_t* ParserSettings();
  static int OnMessageBegin(llhttp_t* p);
  static int OnUrl(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderField(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderValueComplete(llhttp_t* p);
  static int OnHeadersComplete(llhttp_t* p);
  static int OnBody(llhttp_t* p, const char* at, size_t len);
  static int OnChunkHeader(llhttp_t* p);
  static int OnMessageComplete(llhttp_t* p);

  // HTTPS (tls_server_connection.cc): a read's ciphertext in, its plaintext
  // parsed; a batch encrypted and written; ciphertext of the session's own
  // written as is.
  void TlsRead(const char* data, size_t len);
  void TlsWrite(ResponseBatch* batch);
  void TlsFailed();
  void WriteRaw(const char* data, size_t len);
  static void OnRawWrite(uv_write_t* req, int status);
  // After any write completes: resume, finish, re-arm.
  void AfterWrite(int status);

  // Staged bytes (http_server.h): the room for the held request's body is
  // reserved; reading resumes in the check phase.
  void StagingAdmitted(size_t bytes);
  // Gives back the room a request's body held.
  void FreeStaged(Responder::Slot* slot);

  // Parses data, dispatching each complete request; keeps what it may not
  // parse yet in pending_input_.
  void Parse(const char* data, size_t len);
  void Dispatch();
  // Answers the request being received with the server's own error and
  // stops reading.
  // detail, when given, replaces the status's standard message.
  void RespondError(int status, std::string_view detail = {});
  std::shared_ptr<Responder::Slot> NewSlot();
  void RecycleSlot(std::shared_ptr<Responder::Slot>&& slot);
  void OutputReady();
  void Flush();
  // Takes the bytes of the ready prefix of the queue; *close_after when the
  // last slot taken ends the connection.
  ResponseBatch* CollectReady(bool* close_after);
  void Write(ResponseBatch* batch);
  void RecycleBatch(ResponseBatch* batch);
  void MaybeResume();
  bool Overloaded() const;
  void StartReading();
  void StopReading();
  // No further request will be read; a partly received one is abandoned.
  void EndOfRequests();
  // The client shut down its sending side.
  void OnPeerEof();
  // Detaches every queued slot and runs their OnClose callbacks.
  void DropSlots();
  // Nothing more to read or write: shut down gracefully.
  void MaybeFinish();
  // When the timer must act, given what the connection is doing.
  uint64_t Deadline() const;
  uint64_t ActivityDeadline() const;
  // When an idle HTTPS connection frees its TLS record buffers.
  uint64_t TlsReleaseDeadline() const;
  bool ReceivingBody() const;
  uint64_t BodyDeadline() const;
  void ArmTimer();
  void StartTimer(uint64_t due);
  void AddUnsent(size_t n) { unsent_bytes_ += n; }
  // The Connection header this response carries, given the request and the
  // server's state; sets slot->close_after.
  ConnectionHeader DecideConnection(Responder::Slot* slot, bool handler_asks_close);

  ServerContext* ctx_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_shutdown_t shutdown_req_;
  llhttp_t parser_;
  std::string peer_;
  std::unique_ptr<TlsSession> tls_;  // HTTPS only
  std::string tls_plain_;            // a read's plaintext (reused)
  std::string tls_out_;              // ciphertext to write (reused)
  uint64_t id_;

  // The request being parsed (reused; cleared at each message begin).
  HttpRequest request_;
  std::shared_ptr<Responder::Slot> current_;  // its slot, once the head is complete
  size_t header_bytes_ = 0;
  size_t body_bytes_ = 0;
  int error_status_ = 0;          // set by a callback that rejects the request
  std::string error_detail_;      // and what exactly is wrong, when it says
  bool in_header_field_ = false;  // the last header callback was a field name
  bool in_message_ = false;       // a request has begun and not completed
  bool head_complete_ = false;
  bool message_ready_ = false;  // a request is complete, waiting for Dispatch
  bool in_parse_ = false;
  bool awaiting_room_ = false;      // the head is parsed; the body waits for staging room
  bool continue_deferred_ = false;  // and its "100 Continue" waits with it
  std::string pending_input_;       // read but not parsed: back-pressure

  // Responses.
  std::deque<std::shared_ptr<Responder::Slot>> slots_;
  std::vector<std::shared_ptr<Responder::Slot>> free_slots_;
  std::vector<ResponseBatch*> free_batches_;
  size_t unanswered_ = 0;
  size_t unsent_bytes_ = 0;
  int writes_in_flight_ = 0;

  // State.
  bool reading_ = false;
  bool paused_ = false;        // reading stopped by back-pressure
  bool stop_parsing_ = false;  // no further request will be read
  bool lingering_ = false;     // sending side shut down, draining the client's bytes
  bool peer_eof_ = false;      // the client's sending side is shut down
  bool closing_ = false;
  bool flush_scheduled_ = false;
  int handles_open_ = 0;
  uint64_t requests_seen_ = 0;
  uint64_t accepted_at_ = 0;
  uint64_t head_start_ = 0;
  uint64_t body_start_ = 0;  // when the head was complete: the body's clock
  uint64_t last_activity_ = 0;
  uint64_t linger_start_ = 0;
  bool timer_armed_ = false;
  uint64_t timer_due_ = 0;
  uint64_t forgiven_due_ = kNoDeadline;  // a deadline passed while the client's bytes waited

  // Intrusive list of the server's connections.
  ServerConnection* prev_ = nullptr;
  ServerConnection* next_ = nullptr;
};

}  // namespace distkv::net
