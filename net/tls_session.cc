#include "net/tls_session.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cstring>

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

// The BIO under every session. Reads take bytes from the input span of the
// running call (TlsSession::Io); writes append to its output string. Nothing
// is buffered in between: a memory BIO pair would copy each record once more
// on the way in and once more on the way out, and its length queries and
// buffer growth cost more than a small record's copy.
int IoWrite(BIO* bio, const char* data, int len) {
  auto* io = static_cast<TlsSession::Io*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (io->out == nullptr) {  // no call is running: nothing may be sent
    BIO_set_retry_write(bio);
    return -1;
  }
  io->out->append(data, static_cast<size_t>(len));
  return len;
}

int IoRead(BIO* bio, char* data, int len) {
  auto* io = static_cast<TlsSession::Io*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (io->in_len == 0) {  // "no data yet", not end of file
    BIO_set_retry_read(bio);
    return -1;
  }
  const size_t n = std::min(io->in_len, static_cast<size_t>(len));
  std::memcpy(data, io->in, n);
  io->in += n;
  io->in_len -= n;
  return static_cast<int>(n);
}

long IoCtrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // writes are complete as they return
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(static_cast<TlsSession::Io*>(BIO_get_data(bio))->in_len);
    default:  // WPENDING, EOF, kTLS queries, ...: none of it applies
      return 0;
  }
}

int IoCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* IoMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "distkv-tls-io");
    BIO_meth_set_write(m, IoWrite);
    BIO_meth_set_read(m, IoRead);
    BIO_meth_set_ctrl(m, IoCtrl);
    BIO_meth_set_create(m, IoCreate);
    return m;
  }();
  return method;
}

}  // namespace

// Points the BIO at one call's input and output for as long as it runs.
class TlsSession::IoScope {
 public:
  IoScope(Io* io, const char* in, size_t in_len, std::string* out) : io_(io) {
    *io_ = Io{in, in_len, out};
  }
  ~IoScope() { *io_ = Io{}; }

 private:
  Io* io_;
};

TlsSession::TlsSession(std::shared_ptr<TlsContext> context, const std::string& host)
    : context_(std::move(context)) {
  ssl_ = SSL_new(context_->get());
  BIO* bio = BIO_new(IoMethod());
  BIO_set_data(bio, &io_);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways, owned by ssl_
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
  IoScope scope(&io_, nullptr, 0, out);
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  const bool ok = r == 1 || Fail(r);
  if (r == 1) established_ = true;
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
  IoScope scope(&io_, data, len, out);
  buffers_held_ = true;
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
    if (SSL_has_pending(ssl_) == 0 && io_.in_len == 0) break;
  }
  return ok;
}

bool TlsSession::Send(const char* data, size_t len, std::string* out) {
  IoScope scope(&io_, nullptr, 0, out);
  buffers_held_ = true;
  // No ClearErrors: the BIO takes everything, so any failure here is fatal,
  // however SSL_get_error would classify it.
  while (len > 0) {
    // The BIO takes everything, so SSL_write writes all of it or fails.
    const int chunk = static_cast<int>(std::min<size_t>(len, 1u << 30));
    const int n = SSL_write(ssl_, data, chunk);
    if (n <= 0) {
      Fail(n);
      if (error_.empty()) error_ = "TLS write refused";
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void TlsSession::ReleaseBuffers() {
  // Refused (and harmless) while a partial record waits in them; then the
  // next idle spell after more input tries again.
  const int freed = SSL_free_buffers(ssl_);
  (void)freed;
  buffers_held_ = false;
}

void TlsSession::Shutdown(std::string* out) {
  if (!established_) return;
  IoScope scope(&io_, nullptr, 0, out);
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

}  // namespace distkv::net
