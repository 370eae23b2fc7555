#include "net/tls_session.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cctype>

namespace distkv::net {

namespace {
constexpr size_t kPlainChunk = 16 * 1024;  // one TLS record's worth
constexpr unsigned char kHandshakeRecord = 0x16;

// SSL_get_error needs an empty error queue before each call into the session.
// ERR_clear_error walks and resets the whole per-thread queue every time
// (hundreds of instructions, a tenth of a small request's TLS cost), so it
// runs only when something is queued.
void ClearErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}
}  // namespace

TlsSession::TlsSession(std::shared_ptr<TlsContext> context, const std::string& host)
    : context_(std::move(context)) {
  ssl_ = SSL_new(context_->get());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  // An empty memory BIO means "no data yet", not end of file.
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);
  if (context_->server()) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (!host.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    // Peers are named by address in sharding.toml: check an IP against the
    // certificate's IP SANs, a name against its DNS names (and send SNI).
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
      ERR_clear_error();
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
      SSL_set_tlsext_host_name(ssl_, host.c_str());
    }
  }
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::DrainOutput(std::string* out) {
  const size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return;
  const size_t at = out->size();
  out->resize(at + pending);
  const int n = BIO_read(out_, out->data() + at, static_cast<int>(pending));
  out->resize(at + (n > 0 ? static_cast<size_t>(n) : 0));
}

bool TlsSession::Fail(int ret) {
  const int e = SSL_get_error(ssl_, ret);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
  if (e == SSL_ERROR_ZERO_RETURN) {
    peer_closed_ = true;
    return true;
  }
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    error_ =
        std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
    ERR_clear_error();
  } else {
    error_ = TlsErrorText();
  }
  return false;
}

bool TlsSession::Start(std::string* out) {
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  const bool ok = r == 1 || Fail(r);
  if (r == 1) established_ = true;
  DrainOutput(out);
  return ok;
}

bool TlsSession::Receive(const char* data, size_t len, std::string* plain, std::string* out) {
  if (!received_any_ && len > 0) {
    received_any_ = true;
    if (context_->server() && static_cast<unsigned char>(data[0]) != kHandshakeRecord) {
      plain_http_ = std::isupper(static_cast<unsigned char>(data[0])) != 0;
      error_ = plain_http_ ? "a plain HTTP request on the HTTPS port" : "not a TLS handshake";
      return false;
    }
  }
  if (BIO_write(in_, data, static_cast<int>(len)) != static_cast<int>(len)) {
    error_ = "cannot buffer TLS input";
    return false;
  }
  ClearErrors();
  bool ok = true;
  if (!established_) {
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      established_ = true;
    } else {
      ok = Fail(r);
    }
  }
  // SSL_read decrypts into a scratch buffer of the thread, and only the bytes
  // it gave are appended: growing `plain` by a record's worth before each
  // call would zero 16 KiB every time (most calls return a small request, and
  // the last one nothing), which cost more than the decryption itself.
  static thread_local char scratch[kPlainChunk];
  while (ok && established_ && !peer_closed_) {
    const int n = SSL_read(ssl_, scratch, static_cast<int>(kPlainChunk));
    if (n <= 0) {
      ok = Fail(n);
      break;
    }
    plain->append(scratch, static_cast<size_t>(n));
    // Stop when no record is left, rather than with a last SSL_read that
    // reports "want read": that call and its SSL_get_error cost as much as
    // decrypting a small request.
    if (SSL_has_pending(ssl_) == 0 && BIO_ctrl_pending(in_) == 0) break;
  }
  DrainOutput(out);
  return ok;
}

bool TlsSession::Send(const char* data, size_t len, std::string* out) {
  ClearErrors();
  while (len > 0) {
    // A memory BIO takes everything, so SSL_write writes all of it or fails.
    const int chunk = static_cast<int>(std::min<size_t>(len, 1u << 30));
    const int n = SSL_write(ssl_, data, chunk);
    if (n <= 0) {
      Fail(n);
      if (error_.empty()) error_ = "TLS write refused";
      DrainOutput(out);
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  DrainOutput(out);
  return true;
}

void TlsSession::Shutdown(std::string* out) {
  if (!established_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
  DrainOutput(out);
}

}  // namespace distkv::net
