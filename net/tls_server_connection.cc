// ServerConnection, HTTPS: TLS sits between the socket and the rest of the
// connection. A read's ciphertext goes into the connection's TlsSession and
// the plaintext that comes out is parsed exactly as a plain read would be
// (back-pressure keeps unparsed plaintext in pending_input_ as usual). A
// response batch is encrypted into one buffer and written like any other;
// its plaintext size leaves the unsent count at once and its ciphertext size
// counts until written, so back-pressure still sees what waits on the socket.
//
// A failed handshake (an untrusted, expired or missing certificate, a
// protocol error) or a corrupt record ends the connection with a log line,
// after the alert OpenSSL wrote is sent. A client that speaks plain HTTP to
// the HTTPS port gets a plain 400 naming the problem, then the close.
#include <openssl/ssl.h>

#include "net/server_connection.h"

namespace distkv::net {

namespace {

struct RawWrite {
  uv_write_t req;
  ServerConnection* conn;
  std::string bytes;
};

}  // namespace

void ServerConnection::TlsRead(const char* data, size_t len) {
  tls_plain_.clear();
  tls_out_.clear();
  const bool ok = tls_->Receive(data, len, &tls_plain_, &tls_out_);
  if (!tls_out_.empty()) WriteRaw(tls_out_.data(), tls_out_.size());
  if (closing_) return;
  if (!ok) {
    TlsFailed();
    return;
  }
  if (!tls_plain_.empty()) Parse(tls_plain_.data(), tls_plain_.size());
}

void ServerConnection::TlsFailed() {
  ++ctx_->counters().tls_failures;
  stop_parsing_ = true;
  pending_input_.clear();
  StopReading();
  DropSlots();
  if (tls_->plain_http()) {
    const std::string body =
        MakeErrorResponse(400, "https_required", "this port speaks HTTPS only; use https://").body;
    std::string out = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n";
    out += ctx_->extra_headers();
    out += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    out += body;
    WriteRaw(out.data(), out.size());
  } else {
    ctx_->Log("TLS with " + peer_ + " failed: " + tls_->error());
  }
  if (closing_) return;
  MaybeFinish();
  ArmTimer();
}

void ServerConnection::TlsWrite(ResponseBatch* batch) {
  batch->Seal();
  tls_out_.clear();
  bool ok = true;
  for (const uv_buf_t& b : batch->bufs()) {
    ok = ok && tls_->Send(b.base, b.len, &tls_out_);
  }
  unsent_bytes_ -= batch->bytes;
  RecycleBatch(batch);
  if (!ok) {
    ctx_->Log("TLS with " + peer_ + " failed: " + tls_->error());
    Close();
    return;
  }
  WriteRaw(tls_out_.data(), tls_out_.size());
}

void ServerConnection::WriteRaw(const char* data, size_t len) {
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (writes_in_flight_ == 0) {  // usually the socket takes it all at once
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
    const int n = uv_try_write(stream, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) {
      Close();
      return;
    }
    if (n > 0) {
      last_activity_ = uv_now(ctx_->loop());
      data += n;
      len -= static_cast<size_t>(n);
    }
    if (len == 0) return;
  }
  auto* w = new RawWrite;
  w->conn = this;
  w->bytes.assign(data, len);
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
  if (uv_write(&w->req, stream, &buf, 1, OnRawWrite) != 0) {
    delete w;
    Close();
    return;
  }
  unsent_bytes_ += len;
  ++writes_in_flight_;
}

void ServerConnection::OnRawWrite(uv_write_t* req, int status) {
  auto* w = static_cast<RawWrite*>(req->data);
  ServerConnection* c = w->conn;
  c->unsent_bytes_ -= w->bytes.size();
  --c->writes_in_flight_;
  delete w;
  c->AfterWrite(status);
}

}  // namespace distkv::net
