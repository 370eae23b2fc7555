// RunBench end to end against an in-memory key-value server (net::HttpServer
// on a thread of its own, speaking both of the bench's APIs and answering
// writes with an ETag LSN). A deliberately lossy variant checks that --verify
// catches lost writes.
#include <doctest/doctest.h>
#include <uv.h>

#include <future>
#include <map>
#include <string>
#include <thread>

#include "bench/options.h"
#include "bench/runner.h"
#include "net/http_server.h"

namespace distkv::bench {

namespace {

class KvServer {
 public:
  // lose_every: acknowledge but drop every n-th write (0: none).
  explicit KvServer(int lose_every = 0) : lose_every_(lose_every) {
    std::promise<int> bound;
    std::future<int> port = bound.get_future();
    thread_ = std::thread([this, &bound] { Serve(&bound); });
    port_ = port.get();
  }
  ~KvServer() {
    uv_async_send(&stop_);
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  uint64_t writes() const { return lsn_; }  // read after the run only

 private:
  void Serve(std::promise<int>* bound) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    net::HttpServer server(
        &loop, net::ServerLimits{},
        [this](net::HttpRequest& r, net::Responder responder) { Handle(r, responder); });
    int rc = server.Listen("127.0.0.1", 0);
    REQUIRE(rc == 0);
    stop_.data = &server;
    uv_async_init(&loop, &stop_, [](uv_async_t* a) {
      static_cast<net::HttpServer*>(a->data)->Shutdown([] {});
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    bound->set_value(server.port());
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }

  void Handle(net::HttpRequest& r, net::Responder& responder) {
    std::string key;
    std::string value;
    bool write = false;
    if (r.path.rfind("/kv/", 0) == 0) {
      net::PercentDecode(r.path.substr(4), &key, false);
      write = r.method == "PUT";
      value = r.body;
    } else {
      std::vector<std::pair<std::string, std::string>> params;
      net::ParseQuery(r.query, &params);
      for (auto& [name, v] : params) {
        if (name == "key") key = v;
        if (name == "value") value = v;
      }
      write = r.path == "/set";
    }
    net::HttpResponse response;
    if (write) {
      ++lsn_;
      if (lose_every_ == 0 || lsn_ % lose_every_ != 0) data_[key] = {value, lsn_};
      response.status = 204;
      response.SetHeader("ETag", "\"" + std::to_string(lsn_) + "\"");
    } else {
      auto it = data_.find(key);
      if (it == data_.end()) {
        response = net::MakeErrorResponse(404, "not_found", "no such key");
      } else {
        response.body = it->second.first;
        response.SetHeader("ETag", "\"" + std::to_string(it->second.second) + "\"");
      }
    }
    responder.Send(std::move(response));
  }

  int lose_every_;
  std::map<std::string, std::pair<std::string, uint64_t>> data_;
  uint64_t lsn_ = 0;
  uv_async_t stop_;
  std::thread thread_;
  int port_ = 0;
};

BenchOptions SmallRun(const std::string& target) {
  BenchOptions o;
  o.targets = {target};
  o.connections = 4;
  o.pipeline = 4;
  o.duration_s = 0;
  o.requests = 3000;
  o.keys = 200;
  o.value_bytes = 48;
  o.preload = true;
  o.verify = true;
  o.progress = false;
  o.timeout_ms = 10'000;
  return o;
}

}  // namespace

TEST_CASE("a verified run against a correct store: every request answered, no mismatch") {
  KvServer server;
  BenchOptions o = SmallRun(server.address());
  o.get_weight = 70;
  o.put_weight = 30;
  BenchResult r;
  REQUIRE(RunBench(o, &r));
  CHECK(r.error.empty());
  CHECK(r.preload.total() == 200);
  CHECK(r.preload.status_2xx == 200);
  CHECK(r.ops() == 3000);
  CHECK(r.get.status_2xx == r.get.total());  // preloaded: every key exists
  CHECK(r.put.status_2xx == r.put.total());
  CHECK(r.get.total() > 1500);
  CHECK(r.put.total() > 500);
  CHECK(r.get.latency.count() == r.get.total());
  CHECK(r.connections_opened == 4);
  CHECK(r.verify.enabled);
  CHECK(r.verify.reads_checked == r.get.total());
  CHECK(r.verify.mismatches == 0);
  CHECK(r.elapsed_s > 0);
}

TEST_CASE("the seed API (/get, /set) is verified the same way") {
  KvServer server;
  BenchOptions o = SmallRun(server.address());
  o.api = Api::kSeed;
  o.get_weight = 50;
  o.put_weight = 50;
  o.distribution = Distribution::kZipf;  // hot keys: many reads race with writes
  BenchResult r;
  REQUIRE(RunBench(o, &r));
  CHECK(r.ops() == 3000);
  CHECK(r.get.status_2xx + r.put.status_2xx == 3000);
  CHECK(r.verify.reads_checked > 1000);
  CHECK(r.verify.mismatches == 0);
}

TEST_CASE("--verify reports a store that loses acknowledged writes") {
  KvServer server(/*lose_every=*/5);
  BenchOptions o = SmallRun(server.address());
  o.get_weight = 50;
  o.put_weight = 50;
  o.pipeline = 1;
  BenchResult r;
  REQUIRE(RunBench(o, &r));
  CHECK(r.verify.mismatches > 0);
  REQUIRE_FALSE(r.verify.samples.empty());
  CHECK(r.verify.samples.size() <= 10);
}

TEST_CASE("open loop sends the requested number of requests") {
  KvServer server;
  BenchOptions o = SmallRun(server.address());
  o.preload = false;
  o.verify = false;
  o.rate = 5'000;
  o.requests = 500;
  BenchResult r;
  REQUIRE(RunBench(o, &r));
  CHECK(r.ops() == 500);
  CHECK(r.not_sent == 0);
  CHECK(r.get.status_2xx + r.get.status_404 + r.put.status_2xx == 500);
}

TEST_CASE("an unreachable target turns into counted errors, not a failed run") {
  // Bind a port and close it again: nothing listens there.
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_tcp_t tcp;
  uv_tcp_init(&loop, &tcp);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_bind(&tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  uv_tcp_getsockname(&tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  int port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  BenchOptions o = SmallRun("127.0.0.1:" + std::to_string(port));
  o.preload = false;
  o.connections = 1;
  o.pipeline = 1;
  o.requests = 5;
  BenchResult r;
  REQUIRE(RunBench(o, &r));
  CHECK(r.ops() == 5);
  CHECK(r.get.errors + r.put.errors == 5);
  CHECK(r.get.status_2xx + r.put.status_2xx == 0);
}

}  // namespace distkv::bench
