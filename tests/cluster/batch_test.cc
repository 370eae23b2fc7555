// _mget and _mput across a real 4-shard cluster: per-key statuses in request
// order, binary keys and values, one shard down (its keys fail, the others
// succeed), and an _mput to one shard that is all-or-none across SIGKILL and
// a torn write.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "src/client/sync_client.h"
#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"

namespace distkv::clustertest {
namespace {

Json Results(const Reply& r) {
  Json doc;
  REQUIRE_MESSAGE(ParseJson(r.body, &doc), r);
  const Json* results = JsonField(doc, "results");
  REQUIRE((results && results->is_array()));
  return *results;
}

}  // namespace

TEST_CASE("batch: _mget and _mput through one node, a status per key, one shard down") {
  ClusterSpec spec = LocalCluster(4);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  SyncHttp http;

  std::string body = "{";
  for (int i = 0; i < 60; ++i) {
    body += (i ? ",\"b:" : "\"b:") + std::to_string(i) + "\":\"v" + std::to_string(i) + "\"";
  }
  body += "}";
  Reply put = http.Send(cluster.address(0), "POST", "/kv/_mput", body,
                        {{"Content-Type", "application/json"}});
  REQUIRE_MESSAGE(put.status == 200, put);
  Json puts = Results(put);
  REQUIRE(puts.size() == 60);
  for (const Json& r : puts) CHECK(JsonInt(r, "status") == 201);

  // One key a line, request order kept, missing keys 404.
  std::string keys;
  for (int i = 0; i < 100; ++i) keys += "b:" + std::to_string(i) + "\n";
  Reply got =
      http.Send(cluster.address(3), "POST", "/kv/_mget", keys, {{"Content-Type", "text/plain"}});
  REQUIRE_MESSAGE(got.status == 200, got);
  Json gets = Results(got);
  REQUIRE(gets.size() == 100);
  for (int i = 0; i < 100; ++i) {
    const Json& r = gets[static_cast<size_t>(i)];
    CHECK(JsonText(r, "key") == "b:" + std::to_string(i));
    if (i < 60) {
      CHECK(JsonInt(r, "status") == 200);
      CHECK(JsonText(r, "value") == "v" + std::to_string(i));
    } else {
      CHECK(JsonInt(r, "status") == 404);
    }
  }

  // Binary keys and values through the client library (NDJSON + base64).
  client::Options o;
  o.seeds = {cluster.address(1)};
  client::SyncClient db(o);
  const std::string bin_key("bin\xff\x00", 5), bin_value("\x00\x01\x02", 3);
  std::vector<client::KeyResult> results;
  REQUIRE(db.MPut({{bin_key, bin_value}, {"plain", "p"}}, &results).ok());
  REQUIRE(results.size() == 2);
  CHECK(results[0].status == 201);
  REQUIRE(db.MGet({bin_key, "plain", "nope"}, &results).ok());
  REQUIRE(results.size() == 3);
  CHECK(results[0].value == bin_value);
  CHECK(results[1].value == "p");
  CHECK(results[2].status == 404);

  // Shard 2 down: its keys say so (503), the others succeed.
  cluster.primary(2).Kill();
  body = "{";
  for (int i = 0; i < 40; ++i) body += (i ? ",\"c:" : "\"c:") + std::to_string(i) + "\":\"x\"";
  body += "}";
  put = http.Send(cluster.address(0), "POST", "/kv/_mput", body);
  REQUIRE_MESSAGE(put.status == 200, put);
  puts = Results(put);
  size_t failed = 0;
  for (int i = 0; i < 40; ++i) {
    const std::string key = "c:" + std::to_string(i);
    const int64_t status = JsonInt(puts[static_cast<size_t>(i)], "status");
    if (cluster.OwnerOf(key) == 2) {
      CHECK_MESSAGE(status == 503, key);
      CHECK(JsonText(puts[static_cast<size_t>(i)], "error") == "shard_unavailable");
      ++failed;
    } else {
      CHECK_MESSAGE(status == 201, key);
    }
  }
  CHECK(failed > 0);
  got = http.Send(cluster.address(1), "POST", "/kv/_mget", "[\"c:0\",\"c:1\",\"c:2\",\"c:3\"]");
  gets = Results(got);
  for (size_t i = 0; i < 4; ++i) {
    const std::string key = "c:" + std::to_string(i);
    CHECK(JsonInt(gets[i], "status") == (cluster.OwnerOf(key) == 2 ? 503 : 200));
  }
  cluster.primary(2).Restart();

  CHECK(http.Send(cluster.address(0), "POST", "/kv/_mput", "not json").status == 400);
  CHECK(http.Send(cluster.address(0), "POST", "/kv/_mget", "[]").status == 400);
  // A TTL on a batch is refused, not dropped: nothing is written without it.
  CHECK(http.Send(cluster.address(0), "POST", "/kv/_mput?ttl=30", "{\"ttl:a\":\"v\"}").status ==
        501);
  CHECK(http.Send(cluster.address(0), "POST", "/kv/_mput", "{\"ttl:a\":\"v\"}",
                  {{"X-Distkv-TTL", "30"}})
            .status == 501);
  CHECK(http.Get(cluster.address(0), "/kv/ttl:a").status == 404);
}

TEST_CASE("batch: an _mput to one shard survives SIGKILL and a torn write all or none") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  cluster.Start();
  const std::string addr = cluster.address(0);
  const std::string data = cluster.dir().Sub("data-" + spec.shards[0].name);
  constexpr int kKeys = 20;
  // Each round writes version r to the same 20 keys in one _mput.
  auto round_body = [&](int r) {
    std::string b = "{";
    for (int k = 0; k < kKeys; ++k) {
      b += (k ? ",\"acct:" : "\"acct:") + std::to_string(k) + "\":\"" + std::to_string(r) + "\"";
    }
    return b + "}";
  };
  SyncHttp http;
  int acked = 0;
  for (int r = 1; r <= 30; ++r) {
    Reply rep = http.Send(addr, "POST", "/kv/_mput", round_body(r));
    REQUIRE(rep.status == 200);
    acked = r;
  }
  const std::string segment = NewestSegmentOf(data);
  REQUIRE(!segment.empty());
  cluster.primary(0).Kill();
  const uint64_t size = RecordBytesOf(segment);  // without the pre-allocated zeros

  // Cut the log inside the last group (a write torn by a power loss): the
  // group is one batch, so its first record is at most one group back.
  const auto record = 21 + std::string("acct:10").size() + 2;  // a record of the group
  std::filesystem::resize_file(segment, size - record * 7 - 3);
  cluster.primary(0).Restart();

  SyncHttp fresh;  // the old client's pooled connection died with the node
  std::string keys = "[";
  for (int k = 0; k < kKeys; ++k) keys += (k ? ",\"acct:" : "\"acct:") + std::to_string(k) + "\"";
  Json gets = Results(fresh.Send(addr, "POST", "/kv/_mget", keys + "]"));
  REQUIRE(gets.size() == kKeys);
  const std::string first = JsonText(gets[0], "value");
  for (const Json& r : gets) CHECK(JsonText(r, "value") == first);  // one version for all
  CHECK(first == std::to_string(acked - 1));  // the torn last group is gone, whole
}

}  // namespace distkv::clustertest
