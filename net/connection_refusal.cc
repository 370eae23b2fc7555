// ConnectionRefuser; see connection_refusal.h.
#include "net/connection_refusal.h"

#include "net/uv_handle.h"

namespace distkv::net {

struct ConnectionRefuser::Refused {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown;
  ConnectionRefuser* owner;  // null once the owner has let go
  int handles_open = 2;
  bool closing = false;

  void Close() {
    if (closing) return;
    closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), OnClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), OnClosed);
  }
  static void OnClosed(uv_handle_t* handle) {
    auto* r = static_cast<Refused*>(handle->data);
    if (--r->handles_open > 0) return;
    if (r->owner != nullptr) r->owner->lingering_.erase(r);
    delete r;
  }
};

void ConnectionRefuser::CloseAll() {
  for (Refused* r : lingering_) {
    r->owner = nullptr;
    r->Close();
  }
  lingering_.clear();
}

void ConnectionRefuser::Refuse(uv_loop_t* loop, uv_stream_t* listener,
                               const std::string& response) {
  if (lingering_.size() >= kMaxLingering) {  // a flood: no more time spent on politeness
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(loop, tcp);
    uv_accept(listener, reinterpret_cast<uv_stream_t*>(tcp));
    CloseAndDelete(tcp);
    return;
  }
  auto* r = new Refused;
  r->owner = this;
  lingering_.insert(r);
  uv_tcp_init(loop, &r->tcp);
  uv_timer_init(loop, &r->timer);
  r->tcp.data = r->timer.data = r;
  auto* stream = reinterpret_cast<uv_stream_t*>(&r->tcp);
  uv_buf_t buf = uv_buf_init(const_cast<char*>(response.data()), response.size());
  if (uv_accept(listener, stream) != 0 || uv_try_write(stream, &buf, 1) < 0 ||
      uv_shutdown(&r->shutdown, stream, [](uv_shutdown_t*, int) {}) != 0) {
    r->Close();
    return;
  }
  uv_read_start(
      stream,
      [](uv_handle_t*, size_t, uv_buf_t* b) {
        static char sink[4096];  // dropped bytes; one loop thread
        *b = uv_buf_init(sink, sizeof sink);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
        if (nread < 0) static_cast<Refused*>(s->data)->Close();
      });
  uv_timer_start(
      &r->timer, [](uv_timer_t* t) { static_cast<Refused*>(t->data)->Close(); }, kLingerMs, 0);
}

}  // namespace distkv::net
