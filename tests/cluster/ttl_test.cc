// Keys with a TTL through real processes: a primary and its replica, the
// replica's clock two hours ahead (--clock-skew-ms). An expired key reads as
// 404 on the primary, then on the replica once the primary's tombstone
// arrives, and stays gone across restarts; a key whose TTL is an hour away
// is still served by the skewed replica (it never expires keys by its own
// clock); a plain PUT clears a TTL; If-Match works with a TTL; bad TTLs are
// refused. A slot migration carries each key's expiry to its target.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

int64_t TtlHeader(const Reply& r) {
  const std::string v = r.Header("X-Distkv-TTL");
  return v.empty() ? -1 : std::stoll(v);
}

std::string DigestText(SyncHttp& http, const std::string& address) {
  Json j = GetJson(http, address, "/internal/digest");
  return std::to_string(JsonInt(j, "keys")) + "/" + JsonText(j, "digest");
}

}  // namespace

TEST_CASE("ttl: expiry decided by the primary, replicated as a delete, kept across restarts") {
  ClusterSpec spec = LocalCluster(1, 1);
  TestCluster cluster(spec);
  // The replica's clock runs two hours ahead: were it to expire keys by its
  // own clock, the hour-long TTL below would already be over there.
  cluster.replica(0).args().push_back("--clock-skew-ms");
  cluster.replica(0).args().push_back("7200000");
  cluster.Start();
  const std::string primary = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http;

  REQUIRE(http.Send(primary, "PUT", "/kv/short?ttl=2", "gone soon").status == 201);
  REQUIRE(http.Send(primary, "PUT", "/kv/hour", "stays", {{"X-Distkv-TTL", "3600"}}).status == 201);
  REQUIRE(http.Send(primary, "PUT", "/kv/cleared?ttl=2", "x").status == 201);
  REQUIRE(http.Send(primary, "PUT", "/kv/cleared", "no ttl now").status == 200);
  REQUIRE(http.Send(primary, "PUT", "/kv/zero?ttl=0", "never").status == 201);

  Reply hour = http.Get(primary, "/kv/hour");
  REQUIRE(hour.status == 200);
  CHECK(TtlHeader(hour) > 3500);
  CHECK(TtlHeader(hour) <= 3600);
  CHECK(std::stoull(hour.Header("X-Distkv-Expires")) > 1'700'000'000'000ull);
  CHECK_FALSE(http.Get(primary, "/kv/cleared").HasHeader("X-Distkv-Expires"));
  CHECK_FALSE(http.Get(primary, "/kv/zero").HasHeader("X-Distkv-Expires"));

  // If-Match with a TTL: the condition is checked, the TTL set.
  Reply etagged = http.Get(primary, "/kv/hour");
  REQUIRE(http.Send(primary, "PUT", "/kv/hour?ttl=3600", "stays",
                    {{"If-Match", etagged.Header("ETag")}})
              .status == 200);
  CHECK(http.Send(primary, "PUT", "/kv/hour?ttl=3600", "x", {{"If-Match", "\"1\""}}).status == 412);

  // Bad TTLs are refused with the error shape.
  for (const char* bad : {"/kv/b?ttl=-1", "/kv/b?ttl=1.5", "/kv/b?ttl=abc", "/kv/b?ttl="}) {
    Reply r = http.Send(primary, "PUT", bad, "v");
    CHECK_MESSAGE(r.status == 400, bad << ": " << r);
    CHECK(IsJsonError(r));
  }
  CHECK(http.Send(primary, "DELETE", "/kv/hour?ttl=5", "").status == 400);
  CHECK(http.Send(primary, "PUT", "/kv/b?ttl=5", "v", {{"X-Distkv-TTL", "6"}}).status == 400);

  // The replica holds "short" with its expiry before it expires.
  REQUIRE(WaitUntil([&] { return http.Get(replica, "/kv/short").status == 200; }, 30000));
  CHECK(TtlHeader(http.Get(replica, "/kv/short")) >= 0);

  // Expiry: the primary first, then the replica by the primary's tombstone.
  REQUIRE(WaitUntil([&] { return http.Get(primary, "/kv/short").status == 404; }, 30000));
  REQUIRE(WaitUntil([&] { return http.Get(replica, "/kv/short").status == 404; }, 30000));
  REQUIRE(WaitUntil([&] { return DigestText(http, primary) == DigestText(http, replica); }, 30000));
  // The two-hours-ahead replica still serves the key an hour from expiry.
  Reply on_replica = http.Get(replica, "/kv/hour");
  CHECK(on_replica.status == 200);
  CHECK(on_replica.Header("X-Distkv-Expires") ==
        http.Get(primary, "/kv/hour").Header("X-Distkv-Expires"));
  CHECK(http.Get(replica, "/kv/cleared").status == 200);
  Json stats = GetJson(http, primary, "/stats");
  CHECK(JsonInt(stats, "expired_keys") >= 1);
  CHECK(JsonInt(stats, "keys_with_ttl") == 1);  // "hour"

  // A restart brings neither the expired key back nor loses a TTL.
  CHECK(cluster.primary(0).Stop() == 0);
  CHECK(cluster.replica(0).Stop() == 0);
  cluster.primary(0).Restart();
  cluster.replica(0).Restart();
  CHECK(http.Get(primary, "/kv/short").status == 404);
  CHECK(http.Get(replica, "/kv/short").status == 404);
  Reply after = http.Get(primary, "/kv/hour");
  CHECK(after.status == 200);
  CHECK(TtlHeader(after) > 3500);
  CHECK(TtlHeader(http.Get(replica, "/kv/hour")) >= 0);
  CHECK(http.Get(primary, "/kv/cleared").status == 200);

  // A key that expires while the primary is down is gone when it is back
  // (reads hide it at once; the tombstone follows).
  REQUIRE(http.Send(primary, "PUT", "/kv/while-down?ttl=1", "v").status == 201);
  const uint64_t expires =
      std::stoull(http.Get(primary, "/kv/while-down").Header("X-Distkv-Expires"));
  REQUIRE(WaitUntil([&] { return http.Get(replica, "/kv/while-down").status == 200; }, 30000));
  CHECK(cluster.primary(0).Stop() == 0);
  REQUIRE(WaitUntil(  // by this machine's clock, which the primary shares
      [&] {
        const auto now = std::chrono::system_clock::now().time_since_epoch();
        return static_cast<uint64_t>(
                   std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) > expires;
      },
      30000));
  CHECK(http.Get(replica, "/kv/while-down").status == 200);  // no tombstone came yet
  cluster.primary(0).Restart();
  CHECK(http.Get(primary, "/kv/while-down").status == 404);
  REQUIRE(WaitUntil([&] { return http.Get(replica, "/kv/while-down").status == 404; }, 30000));
}

}  // namespace distkv::clustertest

namespace distkv::clustertest {

TEST_CASE("ttl: a slot migration carries each key's expiry to the target (snapshot and tail)") {
  ClusterSpec spec = LocalCluster(2);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  const std::string a = cluster.address(0), b = cluster.address(1);
  SyncHttp http;
  // Keys of slots 0-1023 (a's): the first ones go by the snapshot, the
  // others, written while the migration holds before its cutover, by the tail.
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 60; ++i) {
    const std::string key = "exp:" + std::to_string(i);
    if (SlotOf(key) < 1024) keys.push_back(key);
  }
  std::map<std::string, std::string> expires;  // key -> X-Distkv-Expires on the source
  auto write = [&](size_t from, size_t to, const std::string& ttl) {
    for (size_t k = from; k < to; ++k) {
      REQUIRE(http.Send(a, "PUT", "/kv/" + keys[k] + "?ttl=" + ttl, "v").status == 201);
      Reply r = http.Get(a, "/kv/" + keys[k]);
      REQUIRE(r.status == 200);
      expires[keys[k]] = r.Header("X-Distkv-Expires");
      REQUIRE_FALSE(expires[keys[k]].empty());
    }
  };
  write(0, 30, "3600");
  Reply started = http.Send(b, "POST", "/admin/migrate?slots=0-1023&hold=1");
  REQUIRE_MESSAGE(started.status == 202, started);
  REQUIRE(WaitUntil(
      [&] {
        Reply r = http.Get(b, "/admin/migrate");
        if (r.status != 200) return false;
        const Json j = Json::parse(r.body);
        return !j.at("migrations").empty() && j.at("migrations")[0].value("phase", "") == "tail";
      },
      30'000));
  write(30, 60, "7200");
  REQUIRE(http.Send(b, "POST", "/admin/migrate?slots=0-1023&hold=0").status / 100 == 2);
  const std::string b_name = cluster.spec().shards[1].name;
  REQUIRE(WaitUntil(
      [&] {
        const Json c = GetJson(http, b, "/cluster");
        if (!c.at("migrations").empty()) return false;
        for (const Json& s : c.at("shards")) {
          for (const Json& r : s.at("slots")) {
            if (r[0].get<int>() == 0) return JsonText(s, "name") == b_name;
          }
        }
        return false;
      },
      60'000));
  for (const std::string& key : keys) {
    // Asked of b itself (the hop header: no forwarding back to a).
    Reply r = http.Send(b, "GET", "/kv/" + key, "", {{"X-Distkv-Hop", "test"}});
    CAPTURE(key);
    REQUIRE(r.status == 200);
    CHECK(r.Header("X-Distkv-Expires") == expires[key]);
  }
  CHECK(JsonInt(GetJson(http, b, "/stats"), "keys_with_ttl") == 60);
}

}  // namespace distkv::clustertest
