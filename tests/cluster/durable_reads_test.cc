// Reads on a primary never show a write before it is acknowledged
// ([storage] reads = "durable", the default): a GET, a forwarded GET and a
// scan page (the local shard's and another shard's) that find a write still
// in its batch wait for the batch. Two shards at fsync = "always" on a slow
// disk (--slow-disk), so a 2 MiB PUT stays unacknowledged for about a second
// while the reads are sent. When that batch fails instead, the held reads
// are read again and show what the store kept (--fail-sync-after).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"

namespace distkv::clustertest {
namespace {

using Clock = std::chrono::steady_clock;

// 1 MB/s: the owned key's 512 KiB PUT waits about half a second for the
// disk, the other shard's 2 MiB PUT about two.
constexpr const char* kBytesPerSecond = "1000000";
const std::vector<size_t> kValueBytes = {512 << 10, 2 << 20};
// Slack between two clients hearing answers the node sent in one order:
// far below the time a write waits for the slow disk.
constexpr auto kSlack = std::chrono::milliseconds(300);

int64_t Ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// The first key "<prefix>N" that shard `shard` owns.
std::string KeyOfShard(const TestCluster& cluster, size_t shard, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string key = prefix + std::to_string(i);
    if (cluster.OwnerOf(key) == shard) return key;
  }
}

// Calls each at once, each from a thread of its own; at[i] is when call
// i's answer came back.
struct TimedCalls {
  std::vector<Reply> replies;
  std::vector<Clock::time_point> at;
  std::vector<std::thread> threads;

  explicit TimedCalls(std::vector<Call> calls) : replies(calls.size()), at(calls.size()) {
    for (size_t i = 0; i < calls.size(); ++i) {
      threads.emplace_back([this, i, call = std::move(calls[i])]() mutable {
        net::ClientOptions options = SyncHttp::DefaultOptions();
        options.request_timeout_ms = 60'000;
        SyncHttp http(options);
        std::vector<Call> one;
        one.push_back(std::move(call));
        replies[i] = std::move(http.SendAll(std::move(one), 1)[0]);
        at[i] = Clock::now();
      });
    }
  }
  void Join() {
    for (auto& t : threads) t.join();
  }
};

// Until each primary has staged its write (they start with empty logs):
// then the reads that follow find the writes in their batches.
void WaitStaged(SyncHttp& http, const TestCluster& cluster) {
  for (size_t s = 0; s < 2; ++s) {
    REQUIRE(WaitUntil(
        [&] { return JsonInt(GetJson(http, cluster.address(s), "/stats"), "last_lsn") >= 1; },
        30'000));
  }
}

// The keys a scan page lists.
std::vector<std::string> ScanKeys(const Json& page) {
  std::vector<std::string> keys;
  const Json* listed = JsonField(page, "keys");
  if (!listed || !listed->is_array()) return keys;
  for (const Json& k : *listed) keys.push_back(k.get<std::string>());
  return keys;
}

TEST_CASE("durable reads: GET, forwarded GET and scan pages wait for the write they show") {
  ClusterSpec spec = LocalCluster(2);
  spec.fsync = "always";
  spec.Set("cluster", "forward_timeout_ms", 30'000);  // forwarded reads wait for the slow disk
  TestCluster cluster(spec);
  for (size_t s = 0; s < 2; ++s) {
    cluster.primary(s).args().push_back("--slow-disk");
    cluster.primary(s).args().push_back(kBytesPerSecond);
  }
  cluster.Start();
  // Read through node 0: keys[0] is its own shard's, keys[1] the other's.
  const std::string node0 = cluster.address(0);
  const std::vector<std::string> keys = {KeyOfShard(cluster, 0, "own-"),
                                         KeyOfShard(cluster, 1, "other-")};
  auto put_both = [&](char fill) {
    std::vector<Call> calls;
    for (size_t i = 0; i < keys.size(); ++i) {
      calls.push_back(
          MakeCall(cluster.address(i), "PUT", "/kv/" + keys[i], std::string(kValueBytes[i], fill)));
    }
    return std::make_unique<TimedCalls>(std::move(calls));
  };
  auto check_puts = [&](const TimedCalls& puts) {
    for (size_t i = 0; i < keys.size(); ++i) CHECK_MESSAGE(Is2xx(puts.replies[i].status), keys[i]);
  };

  SUBCASE("a scan page: the node's own shard's part, then the other shard's") {
    auto puts = put_both('a');
    net::ClientOptions options = SyncHttp::DefaultOptions();
    options.request_timeout_ms = 60'000;
    SyncHttp http(options);
    WaitStaged(http, cluster);
    Json page = GetJson(http, node0, "/kv?limit=100");
    const Clock::time_point answered = Clock::now();
    puts->Join();
    check_puts(*puts);
    const std::vector<std::string> seen = ScanKeys(page);
    // The page was read while the writes were staged: it shows them, so it
    // waited for each of them.
    CHECK(seen.size() == 2);
    for (size_t i = 0; i < keys.size(); ++i) {
      CHECK_MESSAGE(std::find(seen.begin(), seen.end(), keys[i]) != seen.end(), keys[i]);
      CHECK_MESSAGE(answered + kSlack >= puts->at[i],
                    "the scan answered " << Ms(puts->at[i] - answered) << " ms before the write of "
                                         << keys[i] << " was acknowledged");
    }
  }

  SUBCASE("a GET of the node's own key and a GET it forwards") {
    auto puts = put_both('b');
    SyncHttp http;
    WaitStaged(http, cluster);
    TimedCalls gets({MakeCall(node0, "GET", "/kv/" + keys[0], ""),
                     MakeCall(node0, "GET", "/kv/" + keys[1], "")});
    gets.Join();
    puts->Join();
    check_puts(*puts);
    for (size_t i = 0; i < keys.size(); ++i) {
      CHECK_MESSAGE(gets.replies[i].status == 200, keys[i]);
      CHECK_MESSAGE(gets.replies[i].body == std::string(kValueBytes[i], 'b'),
                    keys[i] << ": " << gets.replies[i].body.substr(0, 200));
      CHECK_MESSAGE(gets.at[i] + kSlack >= puts->at[i], "the GET answered "
                                                            << Ms(puts->at[i] - gets.at[i])
                                                            << " ms before the write of " << keys[i]
                                                            << " was acknowledged");
    }
  }
}

// What a read held for a batch answers when that batch fails. Shard 1's
// primary has a disk that writes 1 MB/s and fails every sync after its
// first (the store's creation): a 2 MiB PUT of `kept` is in flight, a small
// PUT of `undone` is staged behind it, and the reads are sent then. The
// failed sync keeps `kept` (it may or may not be on disk, as its writer is
// told; reads show it until a restart) and undoes `undone`: every read is
// answered from what the store holds after the failure, read again.
TEST_CASE("durable reads: reads held for a batch that fails are read again") {
  ClusterSpec spec = LocalCluster(2);
  spec.fsync = "always";
  spec.Set("cluster", "forward_timeout_ms", 30'000);
  TestCluster cluster(spec);
  for (const char* arg : {"--slow-disk", kBytesPerSecond, "--fail-sync-after", "1"}) {
    cluster.primary(1).args().push_back(arg);
  }
  cluster.Start();
  const std::string node0 = cluster.address(0), node1 = cluster.address(1);
  const std::string kept = KeyOfShard(cluster, 1, "kept-");
  const std::string undone = KeyOfShard(cluster, 1, "undone-");
  net::ClientOptions options = SyncHttp::DefaultOptions();
  options.request_timeout_ms = 60'000;
  SyncHttp http(options);

  TimedCalls put_kept({MakeCall(node1, "PUT", "/kv/" + kept, std::string(2 << 20, 'k'))});
  REQUIRE(
      WaitUntil([&] { return JsonInt(GetJson(http, node1, "/stats"), "last_lsn") >= 1; }, 30'000));
  TimedCalls put_undone({MakeCall(node1, "PUT", "/kv/" + undone, "small")});
  REQUIRE(
      WaitUntil([&] { return JsonInt(GetJson(http, node1, "/stats"), "last_lsn") >= 2; }, 30'000));
  const auto reads_held = [&] {
    const Json stats = GetJson(http, node1, "/stats");
    const Json* commit = JsonField(stats, "commit");
    return commit ? JsonInt(*commit, "reads_held") : -1;
  };
  const int64_t held_at_start = reads_held();
  const std::string mget_body = "[\"" + kept + "\",\"" + undone + "\"]";
  // Through node 1 (its own store) and node 0 (forwarded, /internal/scan).
  TimedCalls reads(
      {MakeCall(node1, "GET", "/kv?limit=100"), MakeCall(node0, "GET", "/kv?limit=100"),
       MakeCall(node1, "GET", "/kv/" + undone), MakeCall(node0, "GET", "/kv/" + undone),
       MakeCall(node1, "POST", "/kv/_mget", mget_body),
       MakeCall(node0, "POST", "/kv/_mget", mget_body)});
  reads.Join();
  put_kept.Join();
  put_undone.Join();
  const int64_t held = reads_held() - held_at_start;

  // The writers: neither write was acknowledged.
  CHECK_MESSAGE(put_kept.replies[0].status == 500, put_kept.replies[0]);
  CHECK_MESSAGE(put_kept.replies[0].body.find("may or may not") != std::string::npos,
                put_kept.replies[0]);
  CHECK_MESSAGE(put_undone.replies[0].status == 500, put_undone.replies[0]);
  CHECK_MESSAGE(put_undone.replies[0].body.find("the write was not stored") != std::string::npos,
                put_undone.replies[0]);
  // Each read waited for the batch (else this test would not show the
  // read-again path): both scans, both GETs, both _mget parts.
  CHECK_MESSAGE(held == 6, "reads held: " << held);
  for (size_t i : {0, 1}) {
    const Reply& scan = reads.replies[i];
    CHECK_MESSAGE(scan.status == 200, scan);
    CHECK_MESSAGE(
        ScanKeys(Json::parse(scan.body, nullptr, false)) == std::vector<std::string>{kept}, scan);
    CHECK_MESSAGE(scan.body.find("\"cursor\":\"\"") != std::string::npos,
                  "the last page: " << scan);
  }
  for (size_t i : {2, 3}) CHECK_MESSAGE(reads.replies[i].status == 404, reads.replies[i]);
  for (size_t i : {4, 5}) {
    const Reply& mget = reads.replies[i];
    CHECK_MESSAGE(mget.status == 200, mget);
    const Json results = *JsonField(Json::parse(mget.body, nullptr, false), "results");
    REQUIRE(results.size() == 2);
    CHECK_MESSAGE(JsonInt(results[0], "status") == 200, mget.body.substr(0, 200));
    CHECK_MESSAGE(JsonText(results[0], "value") == std::string(2 << 20, 'k'), "");
    CHECK_MESSAGE(JsonInt(results[1], "status") == 404, results[1].dump());
    CHECK_MESSAGE(!JsonField(results[1], "value"),
                  "an undone write's value: " << results[1].dump());
    CHECK_MESSAGE(!JsonField(results[1], "etag"), results[1].dump());
  }
}

}  // namespace
}  // namespace distkv::clustertest
