// OutboundConnection, HTTPS: once TCP is up the connection starts a TLS
// handshake (the ClientHello leaves at once, outside the outbox's turn), and
// the outbox waits until the handshake is done. Reads go through the
// TlsSession and the plaintext is fed to the response parser as a plain read
// would be; each outbox write is encrypted into one buffer, kept for the
// next write like the plaintext's. The peer's certificate must chain to the
// CA and name the host connected to; when it does not, every pending
// request fails with kConnectFailed and the reason (and the client's log
// hears it).
#include "net/outbound_connection.h"

namespace distkv::net {

bool OutboundConnection::TlsStart() {
  tls_ = std::make_unique<TlsSession>(options_.tls, host_);
  std::string out;
  const bool ok = tls_->Start(&out);
  if (!out.empty()) WriteRaw(std::move(out));
  if (!ok && !closed_) {
    Close(ClientError::kConnectFailed, "TLS with " + host_header_ + ": " + tls_->error());
  }
  return ok && !closed_;
}

void OutboundConnection::TlsRead(const char* data, size_t len) {
  const bool was_established = tls_->established();
  tls_plain_.clear();
  std::string out;
  const bool ok = tls_->Receive(data, len, &tls_plain_, &out);
  if (!out.empty()) WriteRaw(std::move(out));
  if (closed_) return;
  if (!ok) {
    const std::string detail = "TLS with " + host_header_ + " failed: " + tls_->error();
    if (options_.log) options_.log(detail);
    Close(was_established ? ClientError::kProtocol : ClientError::kConnectFailed, detail);
    return;
  }
  if (!was_established && tls_->established()) Flush();
  if (!tls_plain_.empty()) Feed(tls_plain_.data(), tls_plain_.size());
}

void OutboundConnection::TlsEncrypt(std::vector<std::string>* chunks) {
  std::string out = std::move(tls_spare_);
  out.clear();
  for (const std::string& chunk : *chunks) tls_->Send(chunk.data(), chunk.size(), &out);
  // The plaintext's buffer serializes the next requests, as a plain write's
  // does once written: neither buffer is allocated again for each write.
  if (!chunks->empty() && spare_.capacity() == 0) KeepSpare(&chunks->front(), &spare_);
  chunks->clear();
  chunks->push_back(std::move(out));
}

void OutboundConnection::WriteRaw(std::string bytes) {
  auto* w = new WriteReq;
  w->conn = this;
  w->raw = true;
  w->chunks.push_back(std::move(bytes));
  uv_buf_t buf = uv_buf_init(w->chunks[0].data(), static_cast<unsigned>(w->chunks[0].size()));
  const int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1,
                         &OutboundConnection::OnWriteCb);
  if (r < 0) {
    delete w;
    Close(ClientError::kConnectionLost, "write to " + host_header_ + ": " + uv_strerror(r));
  }
}

}  // namespace distkv::net
