// SyncHttp: see http_sync.h.
#include "tests/cluster/http_sync.h"

#include "tests/cluster/test_tls.h"

#include <signal.h>

#include <doctest/doctest.h>

namespace distkv::clustertest {

std::string Reply::Header(std::string_view name) const {
  const std::string* value = net::FindHeader(headers, name);
  return value == nullptr ? std::string() : *value;
}

bool Reply::HasHeader(std::string_view name) const {
  return net::FindHeader(headers, name) != nullptr;
}

std::ostream& operator<<(std::ostream& out, const Reply& reply) {
  if (!reply.answered()) {
    return out << "no response (" << net::ClientErrorName(reply.error) << ": " << reply.detail
               << ")";
  }
  out << "HTTP " << reply.status;
  for (const auto& h : reply.headers) out << "\n  " << h.name << ": " << h.value;
  constexpr size_t kShown = 300;
  out << "\n  body (" << reply.body.size() << " bytes): " << reply.body.substr(0, kShown);
  if (reply.body.size() > kShown) out << "...";
  return out;
}

Call MakeCall(std::string peer, std::string method, std::string target, std::string body,
              std::vector<net::Header> headers) {
  Call call;
  call.peer = std::move(peer);
  call.request.method = std::move(method);
  call.request.target = std::move(target);
  call.request.body = std::move(body);
  call.request.headers = std::move(headers);
  return call;
}

// The shared state of one SendAll. Callbacks hold it by shared_ptr, so a
// callback that fires after the test gave up (guard expired) touches live
// memory and, seeing `abandoned`, nothing else.
struct SyncHttp::Batch {
  std::vector<Call> calls;
  std::vector<Reply> replies;
  ReplyHook on_reply;
  size_t next = 0;  // index of the next call to submit
  size_t completed = 0;
  size_t in_flight = 0;
  size_t concurrency = 1;
  bool abandoned = false;
  bool done() const { return completed == calls.size(); }
};

net::ClientOptions SyncHttp::DefaultOptions() {
  net::ClientOptions options;
  options.connect_timeout_ms = 2'000;
  options.request_timeout_ms = 10'000;
  options.max_idle_per_peer = 64;
  options.max_pipeline = 1;
  if (TlsEverywhere()) options.tls = TestClientTls(Certs().cert, Certs().key);
  return options;
}

SyncHttp::SyncHttp() : SyncHttp(DefaultOptions()) {}

SyncHttp::SyncHttp(const net::ClientOptions& options) {
  // A node killed by a test leaves sockets that raise SIGPIPE on write; the
  // client sees EPIPE instead, as a real peer would.
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop_);
  uv_timer_init(&loop_, &guard_);
  client_ = std::make_unique<net::HttpClient>(&loop_, options);
  guard_.data = nullptr;
  guard_ms_per_round_ = options.connect_timeout_ms + options.request_timeout_ms + 5'000;
}

SyncHttp::~SyncHttp() {
  client_->Close();
  client_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&guard_), nullptr);
  // Let the client's handles finish closing; then close anything left so
  // uv_loop_close cannot fail.
  for (int i = 0; i < 1000 && uv_run(&loop_, UV_RUN_NOWAIT) != 0; ++i) {
  }
  uv_walk(
      &loop_,
      [](uv_handle_t* handle, void*) {
        if (!uv_is_closing(handle)) uv_close(handle, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

void SyncHttp::SubmitNext(const std::shared_ptr<Batch>& batch) {
  while (batch->next < batch->calls.size() && batch->in_flight < batch->concurrency) {
    size_t index = batch->next++;
    ++batch->in_flight;
    Call& call = batch->calls[index];
    client_->Request(call.peer, std::move(call.request),
                     [this, batch, index](net::ClientResult& result) {
                       --batch->in_flight;
                       ++batch->completed;
                       if (batch->abandoned) return;
                       Reply& reply = batch->replies[index];
                       reply.error = result.error;
                       reply.detail = std::move(result.detail);
                       if (result.error == net::ClientError::kNone) {
                         reply.status = result.response.status;
                         reply.headers = std::move(result.response.headers);
                         reply.body = std::move(result.response.body);
                       }
                       if (batch->on_reply) batch->on_reply(index, reply);
                       SubmitNext(batch);
                     });
  }
}

void SyncHttp::RunUntilDone(const std::shared_ptr<Batch>& batch) {
  size_t rounds = (batch->calls.size() + batch->concurrency - 1) / batch->concurrency;
  bool expired = false;
  // The loop may have been idle for long (the test slept or waited on another
  // thread); the client's timeouts start from the loop's clock.
  uv_update_time(&loop_);
  guard_.data = &expired;
  uv_timer_start(
      &guard_, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; },
      guard_ms_per_round_ * rounds, 0);
  SubmitNext(batch);
  while (!batch->done() && !expired) uv_run(&loop_, UV_RUN_ONCE);
  uv_timer_stop(&guard_);
  guard_.data = nullptr;
  if (!batch->done()) {
    batch->abandoned = true;
    FAIL("the HTTP client did not complete " << (batch->calls.size() - batch->completed)
                                             << " request(s) within its own timeouts");
  }
}

std::vector<Reply> SyncHttp::SendAll(std::vector<Call> calls, size_t concurrency,
                                     ReplyHook on_reply) {
  auto batch = std::make_shared<Batch>();
  batch->replies.resize(calls.size());
  batch->calls = std::move(calls);
  batch->on_reply = std::move(on_reply);
  batch->concurrency = concurrency == 0 ? 1 : concurrency;
  if (!batch->calls.empty()) RunUntilDone(batch);
  return std::move(batch->replies);
}

Reply SyncHttp::Send(const std::string& peer, std::string method, std::string target,
                     std::string body, std::vector<net::Header> headers) {
  std::vector<Call> calls;
  calls.push_back(
      MakeCall(peer, std::move(method), std::move(target), std::move(body), std::move(headers)));
  return std::move(SendAll(std::move(calls), 1).front());
}

Reply SyncHttp::Get(const std::string& peer, std::string target, std::vector<net::Header> headers) {
  return Send(peer, "GET", std::move(target), "", std::move(headers));
}

}  // namespace distkv::clustertest
