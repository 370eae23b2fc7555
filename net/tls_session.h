// TlsSession: one TLS connection's state, with no socket of its own.
//
// OpenSSL reads and writes two memory BIOs instead of a file descriptor:
// the connection puts the ciphertext it read from libuv into one
// (Receive) and takes the plaintext out; it hands plaintext to Send and
// writes the ciphertext that comes out with libuv. So OpenSSL never touches
// the socket and never blocks: a handshake that needs more bytes just
// returns, and goes on when the next read arrives. The HTTP code above sees
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
typedef struct bio_st BIO;

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

  bool established() const { return established_; }
  bool peer_closed() const { return peer_closed_; }  // close_notify received
  // Set when the first bytes from a client were not a TLS handshake but
  // looked like a plain HTTP request.
  bool plain_http() const { return plain_http_; }
  const std::string& error() const { return error_; }

 private:
  bool Fail(int ret);
  void DrainOutput(std::string* out);

  std::shared_ptr<TlsContext> context_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // ciphertext from the peer (owned by ssl_)
  BIO* out_ = nullptr;  // ciphertext to the peer (owned by ssl_)
  bool established_ = false;
  bool peer_closed_ = false;
  bool plain_http_ = false;
  bool received_any_ = false;
  std::string error_;
};

}  // namespace distkv::net
