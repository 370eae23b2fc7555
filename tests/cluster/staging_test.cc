// Staged bytes of a real node on a slow disk (--slow-disk): many connections
// pipelining large PUTs must not make the node hold more write bodies than
// [server] max_staged_bytes. Their connections stop being read while the
// cap is reached and are read again as batches become durable, so every
// write still completes; a single PUT larger than the cap goes through.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/raw_http.h"

namespace distkv::clustertest {
namespace {

constexpr int64_t kCap = 1 << 20;
constexpr size_t kValue = 512 * 1024;
constexpr int kConnections = 10;
constexpr int kPipelined = 2;

TEST_CASE("staging: a slow disk under many large pipelined PUTs pauses reading, not memory") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  spec.Set("server", "max_staged_bytes", kCap);
  TestCluster cluster(spec);
  // 4 MB/s: the 10 MiB below take seconds to write, so bodies pile up.
  cluster.primary(0).args().push_back("--slow-disk");
  cluster.primary(0).args().push_back("4000000");
  cluster.Start();
  const std::string addr = cluster.address(0);
  net::ClientOptions options = SyncHttp::DefaultOptions();
  options.request_timeout_ms = 60'000;  // a slow disk on a loaded machine
  SyncHttp http(options);

  std::vector<std::thread> clients;
  std::vector<std::vector<RawResponse>> answers(kConnections);
  std::atomic<int> finished{0};
  for (int c = 0; c < kConnections; ++c) {
    clients.emplace_back([&, c] {
      std::string bytes;
      for (int i = 0; i < kPipelined; ++i) {
        bytes += RawRequest("PUT", "/kv/big-" + std::to_string(c) + "-" + std::to_string(i),
                            std::string(kValue, static_cast<char>('a' + c)));
      }
      RawConnection conn;
      if (conn.Connect(addr)) conn.Exchange(bytes, kPipelined, 120'000);
      answers[c] = conn.responses();
      finished++;
    });
  }
  // While they run, the node never holds more than the cap.
  int64_t most_seen = 0;
  while (finished < kConnections) {
    Json stats = GetJson(http, addr, "/stats");
    most_seen = std::max(most_seen, JsonInt(stats["connections"], "staged_bytes"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : clients) t.join();

  for (int c = 0; c < kConnections; ++c) {
    REQUIRE(answers[c].size() == kPipelined);
    for (const RawResponse& r : answers[c]) CHECK(Is2xx(r.status));
  }
  Json stats = GetJson(http, addr, "/stats");
  const Json& conns = stats["connections"];
  CHECK(most_seen <= kCap);
  CHECK(JsonInt(conns, "staged_bytes_peak") <= kCap);
  // Reading paused (requests waited for room) and resumed (all were answered).
  CHECK(JsonInt(conns, "staging_waits") > 0);
  CHECK(JsonInt(conns, "staged_bytes") == 0);
  for (int c = 0; c < kConnections; ++c) {
    Reply r = http.Get(addr, "/kv/big-" + std::to_string(c) + "-1");
    CHECK(r.body == std::string(kValue, static_cast<char>('a' + c)));
  }

  // One PUT larger than the cap is not refused or stuck: alone, it fits.
  const std::string huge(3 * kCap, 'h');
  Reply put = http.Send(addr, "PUT", "/kv/huge", huge);
  CHECK_MESSAGE(Is2xx(put.status), put);
  CHECK(http.Get(addr, "/kv/huge").body == huge);
}

}  // namespace
}  // namespace distkv::clustertest
