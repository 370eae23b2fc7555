// HttpServer: the listening socket, shutdown and the public face of the
// server. Connections live in net/server_connection.h, their shared state in
// net/server_context.h.
//
// Every libuv handle the server owns is heap-allocated and freed by its close
// callback, so destroying the server while handles are still closing is safe
// (the callbacks then find no server to report to). The orderly way out is
// Shutdown(): it closes the listener, drains the connections and calls back
// once every handle is closed, after which the loop holds nothing of ours.
#include "net/http_server.h"

#include <netinet/in.h>

#include "net/server_connection.h"
#include "net/uv_handle.h"

namespace distkv::net {

struct HttpServer::Impl : ServerContext {
  Impl(uv_loop_t* loop, const ServerLimits& limits, Handler handler)
      : ServerContext(loop, limits, std::move(handler)) {}

  ~Impl() override {
    if (listener != nullptr) {
      listener->data = nullptr;
      if (!listener_closing) CloseAndDelete(listener);
    }
  }

  static void OnConnection(uv_stream_t* stream, int status) {
    auto* impl = static_cast<Impl*>(stream->data);
    if (impl == nullptr || status < 0) return;
    impl->Accept(stream);
  }

  static void OnListenerClosed(void* data) {
    auto* impl = static_cast<Impl*>(data);
    if (impl == nullptr) return;
    impl->listener = nullptr;
    impl->listener_closing = false;
    impl->MaybeDone();
  }

  void ConnectionGone() override { MaybeDone(); }
  void HooksClosed() override { MaybeDone(); }

  void Shutdown(std::function<void()> callback) {
    if (shutting_down) return;
    shutting_down = true;
    on_closed = std::move(callback);
    if (listener != nullptr && !listener_closing) {
      listener_closing = true;
      CloseAndDelete<uv_tcp_t, OnListenerClosed>(listener);
    }
    BeginDrain();
    MaybeDone();
  }

  void MaybeDone() {
    if (!shutting_down || done || listener != nullptr || first_connection() != nullptr ||
        hooks_alive()) {
      return;
    }
    done = true;
    std::function<void()> callback = std::move(on_closed);
    if (callback) callback();
  }

  uv_tcp_t* listener = nullptr;
  bool listener_closing = false;
  int port = 0;
  bool shutting_down = false;
  bool done = false;
  std::function<void()> on_closed;
};

HttpServer::HttpServer(uv_loop_t* loop, const ServerLimits& limits, Handler handler)
    : impl_(std::make_unique<Impl>(loop, limits, std::move(handler))) {}

HttpServer::~HttpServer() = default;

void HttpServer::AddResponseHeader(std::string name, std::string value) {
  impl_->extra_headers().append(name).append(": ").append(value).append("\r\n");
}

int HttpServer::Listen(const std::string& host, int port) {
  if (impl_->listener != nullptr) return UV_EALREADY;
  if (impl_->shutting_down) return UV_ECANCELED;
  std::string ip = host;
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  sockaddr_storage addr{};
  int r = ip.find(':') != std::string::npos
              ? uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr))
              : uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
  if (r != 0) return r;

  auto* listener = new uv_tcp_t;
  uv_tcp_init(impl_->loop(), listener);
  listener->data = impl_.get();
  r = uv_tcp_bind(listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(listener), 1024, Impl::OnConnection);
  if (r != 0) {
    CloseAndDelete(listener);
    return r;
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  if (uv_tcp_getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    impl_->port =
        ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                          : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  }
  impl_->listener = listener;
  return 0;
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::Shutdown(std::function<void()> on_closed) {
  impl_->Shutdown(std::move(on_closed));
}

void HttpServer::EnableTls(std::shared_ptr<TlsContext> tls) { impl_->set_tls(std::move(tls)); }

void HttpServer::SetLog(std::function<void(std::string_view line)> log) {
  impl_->set_log(std::move(log));
}

void HttpServer::SetStagingExempt(std::function<bool(const HttpRequest& request)> exempt) {
  impl_->set_staging_exempt(std::move(exempt));
}

const ServerCounters& HttpServer::counters() const { return impl_->counters(); }

const ServerLimits& HttpServer::limits() const { return impl_->limits(); }

}  // namespace distkv::net
