// RawConnection: see raw_http.h.
#include "tests/cluster/raw_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "net/http_client.h"

namespace distkv::clustertest {

namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

std::string RawResponse::Header(std::string_view name) const {
  const std::string* value = net::FindHeader(headers, name);
  return value == nullptr ? std::string() : *value;
}

// llhttp in response mode, fed whatever the socket delivers; answers that
// complete are appended to `done`.
struct RawConnection::Parser {
  llhttp_t parser;
  llhttp_settings_t settings;
  std::vector<RawResponse> done;
  RawResponse current;
  std::string field;
  std::string value;
  bool in_value = false;
  bool failed = false;

  Parser() {
    llhttp_settings_init(&settings);
    settings.on_message_begin = [](llhttp_t* p) {
      Parser* self = static_cast<Parser*>(p->data);
      self->current = RawResponse();
      self->field.clear();
      self->value.clear();
      self->in_value = false;
      return 0;
    };
    settings.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
      Parser* self = static_cast<Parser*>(p->data);
      if (self->in_value) self->FlushHeader();
      self->field.append(at, n);
      return 0;
    };
    settings.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
      Parser* self = static_cast<Parser*>(p->data);
      self->in_value = true;
      self->value.append(at, n);
      return 0;
    };
    settings.on_headers_complete = [](llhttp_t* p) {
      Parser* self = static_cast<Parser*>(p->data);
      if (self->in_value) self->FlushHeader();
      self->current.status = llhttp_get_status_code(p);
      return 0;
    };
    settings.on_body = [](llhttp_t* p, const char* at, size_t n) {
      static_cast<Parser*>(p->data)->current.body.append(at, n);
      return 0;
    };
    settings.on_message_complete = [](llhttp_t* p) {
      Parser* self = static_cast<Parser*>(p->data);
      self->done.push_back(std::move(self->current));
      self->current = RawResponse();
      return 0;
    };
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    parser.data = this;
  }

  void FlushHeader() {
    current.headers.push_back(net::Header{std::move(field), std::move(value)});
    field.clear();
    value.clear();
    in_value = false;
  }

  void Feed(const char* data, size_t n) {
    if (failed) return;
    if (llhttp_execute(&parser, data, n) != HPE_OK) failed = true;
  }

  void Finish() {
    if (!failed && llhttp_finish(&parser) != HPE_OK) failed = true;
  }
};

RawConnection::RawConnection() : parser_(std::make_unique<Parser>()) {}

RawConnection::~RawConnection() { Close(); }

void RawConnection::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

const std::vector<RawResponse>& RawConnection::responses() const { return parser_->done; }
bool RawConnection::peer_closed() const { return peer_closed_; }
bool RawConnection::parse_failed() const { return parser_->failed; }
const std::string& RawConnection::error() const { return error_; }

bool RawConnection::Connect(const std::string& address) {
  std::string host;
  int port = 0;
  sockaddr_in addr{};
  if (!net::SplitHostPort(address, &host, &port) ||
      inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    error_ = "bad address " + address;
    return false;
  }
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = std::string("socket: ") + strerror(errno);
    return false;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
      errno != EINPROGRESS) {
    error_ = "connect " + address + ": " + strerror(errno);
    Close();
    return false;
  }
  pollfd pfd{fd_, POLLOUT, 0};
  if (poll(&pfd, 1, 2'000) != 1) {
    error_ = "connect " + address + ": timed out";
    Close();
    return false;
  }
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    error_ = "connect " + address + ": " + strerror(err);
    Close();
    return false;
  }
  return true;
}

bool RawConnection::ReadSome(int timeout_ms) {
  if (fd_ < 0 || peer_closed_) return false;
  pollfd pfd{fd_, POLLIN, 0};
  if (poll(&pfd, 1, timeout_ms) <= 0) return true;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      parser_->Feed(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    // EOF or reset: the peer is gone; an answer delimited by EOF completes.
    if (n < 0) error_ = std::string("recv: ") + strerror(errno);
    peer_closed_ = true;
    parser_->Finish();
    return false;
  }
}

bool RawConnection::Exchange(std::string_view bytes, size_t responses, int timeout_ms,
                             size_t chunk) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t sent = 0;
  size_t piece = 1;  // with chunk > 0, pieces of 1, 2, ..., chunk bytes, cyclically
  while (fd_ >= 0) {
    bool all_sent = sent == bytes.size();
    if (all_sent && parser_->done.size() >= responses) return true;
    if (peer_closed_ || parser_->failed) return all_sent;
    int left = MillisLeft(deadline);
    if (left == 0) return all_sent;
    pollfd pfd{fd_, static_cast<short>(POLLIN | (all_sent ? 0 : POLLOUT)), 0};
    if (poll(&pfd, 1, left) <= 0) continue;
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) ReadSome(0);
    if (!all_sent && (pfd.revents & POLLOUT)) {
      size_t n = bytes.size() - sent;
      if (chunk > 0) {
        n = std::min(n, piece);
        piece = piece % chunk + 1;
      }
      ssize_t w = ::send(fd_, bytes.data() + sent, n, MSG_NOSIGNAL);
      if (w > 0) {
        sent += static_cast<size_t>(w);
      } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        error_ = std::string("send: ") + strerror(errno);
        ReadSome(0);  // collect what the peer said before it went away
        return false;
      }
    }
  }
  return false;
}

bool RawConnection::Send(std::string_view bytes) {
  return Exchange(bytes, 0, 5'000) && !peer_closed_;
}

bool RawConnection::WaitForClose(int timeout_ms) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!peer_closed_ && fd_ >= 0) {
    int left = MillisLeft(deadline);
    if (left == 0) break;
    ReadSome(left);
  }
  return peer_closed_;
}

std::string RawRequest(std::string_view method, std::string_view target, std::string_view body) {
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: test\r\n");
  if (!body.empty() || method == "PUT" || method == "POST") {
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  out.append("\r\n").append(body);
  return out;
}

}  // namespace distkv::clustertest
