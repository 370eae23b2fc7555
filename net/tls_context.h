// TlsContext: the certificates and settings that TLS connections of one
// kind share (an OpenSSL SSL_CTX), built once from PEM files.
//
// A server context presents cert/key and, when asked to, demands a client
// certificate signed by the CA (mutual TLS). A client context verifies the
// peer's certificate against the CA, and its name or IP address against the
// host it connected to; it presents cert/key when given, so that nodes can
// pass a server's mutual TLS. TLS 1.2 is the floor.
#pragma once

#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace distkv::net {

struct TlsFiles {
  std::string cert;  // PEM certificate (chain) presented to the peer
  std::string key;   // its PEM private key
  std::string ca;    // PEM CA certificate(s) peers are verified against
};

class TlsContext {
 public:
  // Server side: require_client_cert turns on mutual TLS.
  static std::shared_ptr<TlsContext> NewServer(const TlsFiles& files, bool require_client_cert,
                                               std::string* error);
  // Client side: files.ca is required; cert and key are optional.
  static std::shared_ptr<TlsContext> NewClient(const TlsFiles& files, std::string* error);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }
  bool server() const { return server_; }

 private:
  TlsContext(SSL_CTX* ctx, bool server) : ctx_(ctx), server_(server) {}
  SSL_CTX* ctx_;
  bool server_;
};

// The text of OpenSSL's most recent error (and clears its queue).
std::string TlsErrorText();

}  // namespace distkv::net
