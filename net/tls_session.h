// TlsSession: one TLS connection's state, with no socket of its own.
//
// OpenSSL reads and writes a BIO of ours instead of a file descriptor: while
// Receive runs, the BIO's reads take the ciphertext the connection read from
// libuv, and the plaintext comes out; while Send runs, the BIO's writes
// append the ciphertext to the caller's string, which the connection writes
// with libuv. Nothing is buffered between the calls (a partial record waits
// in OpenSSL's own record buffer), so OpenSSL never touches the socket and
// never blocks: a handshake that needs more bytes just returns, and goes on
// when the next read arrives. The HTTP code above sees
// the same byte stream as without TLS, so pipelining, back-pressure and
// limits work unchanged.
//
// Every call appends the ciphertext to send (handshake messages, alerts,
// records, session tickets) to *out; the caller writes it in order.
#pragma once

#include <memory>
#include <string>

#include "net/tls_context.h"

typedef struct ssl_st SSL;

namespace distkv::net {

class TlsSession {
 public:
  // Client sessions verify the peer's name or IP address against host.
  TlsSession(std::shared_ptr<TlsContext> context, const std::string& host = "");
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Client: starts the handshake (the ClientHello goes to *out).
  bool Start(std::string* out);
  // Takes len bytes read from the socket. Appends what they decrypt to to
  // *plain. False on a fatal error: the connection must close after writing
  // *out (it may hold an alert); error() says why.
  bool Receive(const char* data, size_t len, std::string* plain, std::string* out);
  // Encrypts len bytes of plaintext (only once established()).
  bool Send(const char* data, size_t len, std::string* out);
  // Sends close_notify.
  void Shutdown(std::string* out);
  // Frees OpenSSL's record buffers (about 34 KiB) unless a partial record
  // waits in them; the next Receive or Send allocates them again. Only a
  // server connection idle for a while calls it: a busy one keeps them.
  void ReleaseBuffers();
  // Receive or Send ran since the last ReleaseBuffers.
  bool buffers_held() const { return buffers_held_; }

  bool established() const { return established_; }
  bool peer_closed() const { return peer_closed_; }  // close_notify received
  // Set when the first bytes from a client were not a TLS handshake but
  // looked like a plain HTTP request.
  bool plain_http() const { return plain_http_; }
  const std::string& error() const { return error_; }

  // What the BIO reads and writes during one call (empty between calls).
  struct Io {
    const char* in = nullptr;  // ciphertext not yet taken by OpenSSL
    size_t in_len = 0;
    std::string* out = nullptr;  // where ciphertext to the peer goes
  };

 private:
  class IoScope;
  bool Fail(int ret);

  std::shared_ptr<TlsContext> context_;
  SSL* ssl_ = nullptr;
  Io io_;
  bool established_ = false;
  bool peer_closed_ = false;
  bool plain_http_ = false;
  bool received_any_ = false;
  bool buffers_held_ = false;
  std::string error_;
};

}  // namespace distkv::net
