#include "net/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace distkv::net {

std::string TlsErrorText() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? "unknown TLS error" : text;
}

namespace {

constexpr char kTls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

SSL_CTX* NewCtx(bool server, std::string* error) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) {
    *error = "cannot create a TLS context: " + TlsErrorText();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Writes go into a BIO that always takes everything; the buffer given to
  // SSL_write may move between calls (std::string growth). The record
  // buffers stay with a busy connection: SSL_MODE_RELEASE_BUFFERS would free
  // and allocate them for every request (a tenth of a small request's TLS
  // cost). An idle server connection gives them back instead
  // (TlsSession::ReleaseBuffers); a client keeps them, on at most
  // max_idle_per_peer idle connections a peer.
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read whatever ciphertext is there in one BIO read, not a record header
  // and then its body.
  SSL_CTX_set_read_ahead(ctx, 1);
  // AES-128-GCM first on both ends, and the server's order wins: OpenSSL's
  // default puts AES-256 first, which costs four more rounds per block for
  // no practical gain (AES-128-GCM is TLS 1.3's mandatory suite).
  SSL_CTX_set_ciphersuites(ctx, kTls13Suites);
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  return ctx;
}

bool LoadIdentity(SSL_CTX* ctx, const TlsFiles& files, std::string* error) {
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1) {
    *error = "cannot load the certificate " + files.cert + ": " + TlsErrorText();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    *error = "cannot load the private key " + files.key + ": " + TlsErrorText();
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    *error = "the key " + files.key + " does not match the certificate " + files.cert;
    ERR_clear_error();
    return false;
  }
  return true;
}

bool LoadCa(SSL_CTX* ctx, const std::string& ca, std::string* error) {
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
    *error = "cannot load the CA " + ca + ": " + TlsErrorText();
    return false;
  }
  return true;
}

}  // namespace

std::shared_ptr<TlsContext> TlsContext::NewServer(const TlsFiles& files, bool require_client_cert,
                                                  std::string* error) {
  SSL_CTX* ctx = NewCtx(true, error);
  if (ctx == nullptr) return nullptr;
  std::shared_ptr<TlsContext> out(new TlsContext(ctx, true));
  if (!LoadIdentity(ctx, files, error)) return nullptr;
  if (require_client_cert) {
    if (files.ca.empty()) {
      *error = "mutual TLS needs a CA to verify clients against";
      return nullptr;
    }
    if (!LoadCa(ctx, files.ca, error)) return nullptr;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    // Without a session id context OpenSSL refuses to resume sessions when
    // client certificates are verified.
    static const unsigned char kSid[] = "distkv";
    SSL_CTX_set_session_id_context(ctx, kSid, sizeof(kSid) - 1);
  }
  return out;
}

std::shared_ptr<TlsContext> TlsContext::NewClient(const TlsFiles& files, std::string* error) {
  if (files.ca.empty()) {
    *error = "a TLS client needs a CA to verify its peers against";
    return nullptr;
  }
  SSL_CTX* ctx = NewCtx(false, error);
  if (ctx == nullptr) return nullptr;
  std::shared_ptr<TlsContext> out(new TlsContext(ctx, false));
  if (!files.cert.empty() && !LoadIdentity(ctx, files, error)) return nullptr;
  if (!LoadCa(ctx, files.ca, error)) return nullptr;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return out;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

}  // namespace distkv::net
