// Sharding and routing across real processes: three (or two) shards on
// loopback. Key ownership is computed here, independently of the node
// (harness.h: XXH3 % 16384, equal contiguous ranges by idx), and checked
// against what the nodes store; forwarding, redirects, a dead or silent
// owner, nodes that disagree on the map, and /cluster.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"
#include "tests/cluster/raw_http.h"

namespace distkv::clustertest {
namespace {

std::string UserKey(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "user:%zu", i);
  return buf;
}
std::string UserValue(size_t i) { return "value-of-" + UserKey(i); }

ClusterSpec ShardedSpec(size_t shards, const std::string& routing = "proxy") {
  ClusterSpec spec = LocalCluster(shards);
  spec.fsync = "never";
  spec.routing = routing;
  return spec;
}

// The first key of the form prefix-N that `owner` owns (by position).
std::string KeyOwnedBy(const ClusterSpec& spec, size_t owner, const std::string& prefix) {
  for (size_t i = 0;; ++i) {
    std::string key = prefix + "-" + std::to_string(i);
    if (spec.OwnerOf(key) == owner) return key;
  }
}

// A socket that listens and never accepts: connecting works (the kernel
// completes the handshake), but no answer ever comes. A hung owner.
class SilentListener {
 public:
  explicit SilentListener(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
          ::listen(fd_, 64) == 0;
  }
  ~SilentListener() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

TEST_CASE(
    "sharding: 1,000 keys written through random nodes are readable through every node and stored "
    "only on "
    "their owner") {
  TestCluster cluster(ShardedSpec(3));
  cluster.Start();
  constexpr size_t kKeys = 1000;
  std::mt19937 rng(20240601);
  SyncHttp http;

  // Writes through a random node, half through /kv, half through the seed API.
  std::vector<Call> writes;
  std::vector<size_t> owned(cluster.size(), 0);
  for (size_t i = 0; i < kKeys; ++i) {
    const std::string& via = cluster.address(rng() % cluster.size());
    if (i % 2 == 0) {
      writes.push_back(MakeCall(via, "PUT", "/kv/" + PercentEncode(UserKey(i)), UserValue(i)));
    } else {
      writes.push_back(MakeCall(
          via, "POST", "/set?key=" + PercentEncode(UserKey(i)) + "&value=" + UserValue(i)));
    }
    ++owned[cluster.OwnerOf(UserKey(i))];
  }
  size_t failed_writes = 0;
  for (const Reply& r : http.SendAll(std::move(writes), 16)) {
    if (!Is2xx(r.status) && failed_writes++ == 0) MESSAGE("first failed write: " << r);
  }
  REQUIRE(failed_writes == 0);

  // Every key through every node, alternating /kv and /get.
  std::vector<Call> reads;
  for (size_t node = 0; node < cluster.size(); ++node) {
    for (size_t i = 0; i < kKeys; ++i) {
      std::string target = (i + node) % 2 == 0 ? "/kv/" + PercentEncode(UserKey(i))
                                               : "/get?key=" + PercentEncode(UserKey(i));
      reads.push_back(MakeCall(cluster.address(node), "GET", target));
    }
  }
  std::vector<Reply> replies = http.SendAll(std::move(reads), 16);
  size_t bad_reads = 0, wrong_shard = 0;
  for (size_t j = 0; j < replies.size(); ++j) {
    size_t i = j % kKeys;
    if (replies[j].status != 200 || replies[j].body != UserValue(i)) {
      if (bad_reads++ == 0)
        MESSAGE("first bad read of " << UserKey(i) << " via node " << j / kKeys << ": "
                                     << replies[j]);
    }
    // The answer names the shard that answered it: the owner, also when forwarded.
    if (replies[j].Header("X-Distkv-Shard") !=
        cluster.spec().shards[cluster.OwnerOf(UserKey(i))].name) {
      if (wrong_shard++ == 0)
        MESSAGE("first wrong X-Distkv-Shard, " << UserKey(i) << ": " << replies[j]);
    }
  }
  CHECK_MESSAGE(bad_reads == 0, bad_reads << " of " << replies.size() << " reads wrong");
  CHECK_MESSAGE(wrong_shard == 0, wrong_shard << " answers name another shard than the owner");

  // Each node stores exactly the keys it owns.
  for (size_t node = 0; node < cluster.size(); ++node) {
    CAPTURE(node);
    CHECK(owned[node] > 0);
    Json stats = GetJson(http, cluster.address(node), "/stats");
    CHECK(JsonInt(stats, "keys") == static_cast<int64_t>(owned[node]));
    const Json* shard = JsonField(stats, "shard");
    REQUIRE(shard != nullptr);
    CHECK(*shard == cluster.spec().shards[node].name);
  }
}

TEST_CASE("sharding: writes, conditions and deletes through a non-owner act as at the owner") {
  TestCluster cluster(ShardedSpec(3));
  cluster.Start();
  SyncHttp http;
  const std::string key = KeyOwnedBy(cluster.spec(), 2, "cond");
  const std::string via = cluster.address(0);
  const std::string owner = cluster.address(2);

  Reply created = http.Send(via, "PUT", "/kv/" + key, "v1", {{"If-None-Match", "*"}});
  REQUIRE_MESSAGE(Is2xx(created.status), created);
  uint64_t lsn = 0;
  CHECK_MESSAGE(ParseEtag(created.Header("ETag"), &lsn), created);
  // The ETag seen through the non-owner is the owner's.
  Reply at_owner = http.Get(owner, "/kv/" + key);
  CHECK(at_owner.body == "v1");
  CHECK(at_owner.Header("ETag") == created.Header("ETag"));
  CHECK(at_owner.Header("X-Distkv-Shard") == cluster.spec().shards[2].name);

  Reply again = http.Send(via, "PUT", "/kv/" + key, "v2", {{"If-None-Match", "*"}});
  CHECK_MESSAGE(again.status == 412, again);
  CHECK(IsJsonError(again));
  Reply stale = http.Send(via, "DELETE", "/kv/" + key, "", {{"If-Match", "\"999999999\""}});
  CHECK_MESSAGE(stale.status == 412, stale);
  Reply del = http.Send(via, "DELETE", "/kv/" + key, "", {{"If-Match", created.Header("ETag")}});
  CHECK_MESSAGE(del.status == 204, del);
  Reply gone = http.Get(cluster.address(1), "/kv/" + key);
  CHECK_MESSAGE(gone.status == 404, gone);
  CHECK(IsJsonError(gone));
  CHECK(JsonInt(GetJson(http, owner, "/stats"), "keys") == 0);
}

TEST_CASE("sharding: redirect mode answers 307 with a Location at the owner") {
  TestCluster cluster(ShardedSpec(3, "redirect"));
  cluster.Start();
  SyncHttp http;
  const std::string key = KeyOwnedBy(cluster.spec(), 1, "redir");
  const std::string owner = cluster.address(1);
  // The node's port speaks HTTPS under DISTKV_TEST_TLS, and says so in Location.
  const std::string prefix = (TlsEverywhere() ? "https://" : "http://") + owner + "/";

  // A write sent to a non-owner is redirected, not stored there.
  Reply put = http.Send(cluster.address(0), "PUT", "/kv/" + key, "redirected");
  CHECK_MESSAGE(put.status == 307, put);
  std::string location = put.Header("Location");
  REQUIRE_MESSAGE(location.rfind(prefix, 0) == 0,
                  "Location '" << location << "' does not point at " << owner);
  // 307 keeps method and body: replaying them at the Location stores the value.
  std::string target = location.substr(prefix.size() - 1);
  Reply replayed = http.Send(owner, "PUT", target, "redirected");
  CHECK_MESSAGE(Is2xx(replayed.status), replayed);

  // Reads through both APIs are redirected to a Location that serves the value.
  for (const std::string& read : {"/kv/" + key, "/get?key=" + key}) {
    CAPTURE(read);
    Reply r = http.Get(cluster.address(2), read);
    CHECK_MESSAGE(r.status == 307, r);
    std::string loc = r.Header("Location");
    REQUIRE_MESSAGE(loc.rfind(prefix, 0) == 0, "Location '" << loc << "'");
    Reply followed = http.Get(owner, loc.substr(prefix.size() - 1));
    CHECK_MESSAGE(followed.status == 200, followed);
    CHECK(followed.body == "redirected");
  }
  // The owner answers directly.
  Reply direct = http.Get(owner, "/kv/" + key);
  CHECK(direct.status == 200);
  CHECK(direct.body == "redirected");
  CHECK(JsonInt(GetJson(http, cluster.address(0), "/stats"), "keys") == 0);
  CHECK(JsonInt(GetJson(http, cluster.address(2), "/stats"), "keys") == 0);
}

TEST_CASE(
    "sharding: a dead owner gives 502/503/504 while live shards keep working, and serves again "
    "after a "
    "restart") {
  ClusterSpec spec = ShardedSpec(3);
  spec.Set("cluster", "forward_timeout_ms", 1000).Set("cluster", "connect_timeout_ms", 300);
  TestCluster cluster(spec);
  cluster.Start();
  std::vector<std::string> keys;
  for (size_t owner = 0; owner < 3; ++owner)
    keys.push_back(KeyOwnedBy(cluster.spec(), owner, "dead"));
  {
    SyncHttp http;
    for (size_t owner = 0; owner < 3; ++owner) {
      REQUIRE(
          Is2xx(http.Send(cluster.address(owner), "PUT", "/kv/" + keys[owner], "before").status));
    }
  }
  cluster.primary(2).Kill();

  net::ClientOptions options = SyncHttp::DefaultOptions();
  options.request_timeout_ms = 5'000;  // the node must answer well within this
  SyncHttp http(options);
  for (size_t via = 0; via < 2; ++via) {
    CAPTURE(via);
    Reply read = http.Get(cluster.address(via), "/kv/" + keys[2]);
    CHECK_MESSAGE((read.status == 502 || read.status == 503 || read.status == 504), read);
    CHECK(IsJsonError(read));
    Reply write = http.Send(cluster.address(via), "PUT", "/kv/" + keys[2], "during");
    CHECK_MESSAGE((write.status == 502 || write.status == 503 || write.status == 504), write);
    CHECK(IsJsonError(write));
    // The live shards, directly and forwarded.
    for (size_t owner = 0; owner < 2; ++owner) {
      Reply r = http.Get(cluster.address(via), "/kv/" + keys[owner]);
      CHECK_MESSAGE(r.status == 200, r);
      CHECK(r.body == "before");
    }
  }
  CHECK(JsonInt(GetJson(http, cluster.address(0), "/stats"), "keys") == 1);
  CHECK(JsonInt(GetJson(http, cluster.address(1), "/stats"), "keys") == 1);

  cluster.primary(2).Restart();
  Reply back = http.Get(cluster.address(0), "/kv/" + keys[2]);
  CHECK_MESSAGE(back.status == 200, back);
  CHECK(back.body == "before");
}

TEST_CASE("sharding: a silent owner (accepts, never answers) gives 504 after forward_timeout_ms") {
  ClusterSpec spec = ShardedSpec(2);
  spec.Set("cluster", "forward_timeout_ms", 1000).Set("cluster", "connect_timeout_ms", 300);
  TestCluster cluster(spec);
  int silent_port = std::stoi(spec.shards[1].address.substr(spec.shards[1].address.rfind(':') + 1));
  SilentListener silent(silent_port);
  REQUIRE(silent.ok());
  cluster.primary(0).StartAndWait();  // shard 1 is the silent socket, not a node

  net::ClientOptions options = SyncHttp::DefaultOptions();
  options.request_timeout_ms = 5'000;
  SyncHttp http(options);
  Reply r = http.Get(cluster.address(0), "/kv/" + KeyOwnedBy(spec, 1, "silent"));
  CHECK_MESSAGE(r.status == 504, r);
  CHECK(IsJsonError(r));
  // A write that timed out may have been applied: the answer says so.
  Reply w = http.Send(cluster.address(0), "PUT", "/kv/" + KeyOwnedBy(spec, 1, "silent"), "v");
  CHECK_MESSAGE(w.status == 504, w);
  Json body;
  REQUIRE_MESSAGE(ParseJson(w.body, &body), w);
  const Json* error = JsonField(body, "error");
  const Json* message = JsonField(body, "message");
  REQUIRE((error != nullptr && message != nullptr));
  CHECK(*error == "shard_timeout");
  CHECK_MESSAGE(
      message->get<std::string>().find("may or may not have been applied") != std::string::npos, w);
  // Its own keys are unaffected.
  std::string own = KeyOwnedBy(spec, 0, "own");
  CHECK(Is2xx(http.Send(cluster.address(0), "PUT", "/kv/" + own, "v").status));
  CHECK(http.Get(cluster.address(0), "/kv/" + own).body == "v");
}

TEST_CASE("sharding: nodes that disagree on the map answer 421 instead of forwarding in a loop") {
  // Delhi's config: Delhi idx 0, Mumbai idx 1. Mumbai's config swaps the idx,
  // so for slots in [8192, 16384) each node believes the other is the owner.
  ClusterSpec delhi_view = ShardedSpec(2);
  ClusterSpec mumbai_view = delhi_view;
  std::swap(mumbai_view.shards[0].idx, mumbai_view.shards[1].idx);
  TestCluster cluster(delhi_view);
  cluster.UseConfigFor(1, mumbai_view);
  cluster.Start();

  std::string disputed = KeyOwnedBy(delhi_view, 1, "disputed");  // Delhi: Mumbai's; Mumbai: Delhi's
  REQUIRE(mumbai_view.OwnerOf(disputed) == 0);

  net::ClientOptions options = SyncHttp::DefaultOptions();
  options.request_timeout_ms = 5'000;
  SyncHttp http(options);
  for (size_t via = 0; via < 2; ++via) {
    CAPTURE(via);
    Reply read = http.Get(cluster.address(via), "/kv/" + disputed);
    CHECK_MESSAGE(read.status == 421, read);
    CHECK(IsJsonError(read));
    Reply write = http.Send(cluster.address(via), "PUT", "/kv/" + disputed, "v");
    CHECK_MESSAGE(write.status == 421, write);
  }
  CHECK(JsonInt(GetJson(http, cluster.address(0), "/stats"), "keys") == 0);
  CHECK(JsonInt(GetJson(http, cluster.address(1), "/stats"), "keys") == 0);
}

TEST_CASE("sharding: GET /cluster returns the shard map and which node answered") {
  ClusterSpec spec = LocalCluster(3, /*replicas_per_shard=*/1);
  spec.fsync = "never";
  TestCluster cluster(spec);
  // Only the primaries: the map is static, the replicas need not run.
  for (size_t i = 0; i < 3; ++i) cluster.primary(i).StartAndWait();
  SyncHttp http;
  std::vector<std::string> bodies;
  for (size_t node = 0; node < 3; ++node) {
    CAPTURE(node);
    Reply r = http.Get(cluster.address(node), "/cluster");
    REQUIRE_MESSAGE(r.status == 200, r);
    bodies.push_back(r.body);
    Json map;
    std::string error;
    REQUIRE_MESSAGE(ParseJson(r.body, &map, &error), error << ": " << r.body);
    std::vector<std::string> strings;
    CollectStrings(map, &strings);
    std::vector<double> numbers;
    CollectNumbers(map, &numbers);
    auto has_string = [&](const std::string& s) {
      return std::find(strings.begin(), strings.end(), s) != strings.end();
    };
    auto has_number = [&](double n) {
      return std::find(numbers.begin(), numbers.end(), n) != numbers.end();
    };
    for (const ShardSpec& shard : spec.shards) {
      CHECK_MESSAGE(has_string(shard.name), shard.name << " missing from " << r.body);
      CHECK_MESSAGE(has_string(shard.address), shard.address << " missing from " << r.body);
      CHECK_MESSAGE(has_string(shard.replicas[0]), shard.replicas[0] << " missing from " << r.body);
    }
    // Slot ranges: shard 1 starts at 16384/3, shard 2 at 2*16384/3.
    CHECK_MESSAGE(has_number(5461), r.body);
    CHECK_MESSAGE(has_number(10922), r.body);
  }
  // Each node says which node it is, so the three answers differ.
  CHECK(bodies[0] != bodies[1]);
  CHECK(bodies[1] != bodies[2]);
}

TEST_CASE("sharding: pipelined GETs through a forwarding node come back in order") {
  TestCluster cluster(ShardedSpec(3));
  cluster.Start();
  constexpr size_t kKeys = 300;
  {
    SyncHttp http;
    std::vector<Call> writes;
    for (size_t i = 0; i < kKeys; ++i) {
      writes.push_back(MakeCall(cluster.address(cluster.OwnerOf(UserKey(i))), "PUT",
                                "/kv/" + PercentEncode(UserKey(i)), UserValue(i)));
    }
    for (const Reply& r : http.SendAll(std::move(writes), 16)) REQUIRE_MESSAGE(Is2xx(r.status), r);
  }
  // About a third are local to node 0 (fast), the rest forwarded (slower):
  // answers must still leave in request order.
  std::string requests;
  for (size_t i = 0; i < kKeys; ++i)
    requests += RawRequest("GET", "/kv/" + PercentEncode(UserKey(i)));
  RawConnection conn;
  REQUIRE(conn.Connect(cluster.address(0)));
  CHECK(conn.Exchange(requests, kKeys, 30'000));
  REQUIRE_MESSAGE(conn.responses().size() == kKeys,
                  "got " << conn.responses().size() << " answers");
  size_t bad = 0;
  for (size_t i = 0; i < kKeys; ++i) {
    const RawResponse& r = conn.responses()[i];
    if ((r.status != 200 || r.body != UserValue(i)) && bad++ == 0) {
      MESSAGE("answer " << i << ": HTTP " << r.status << " '" << r.body.substr(0, 80) << "'");
    }
  }
  CHECK(bad == 0);
}

TEST_CASE(
    "sharding: ?read=replica sends a read for another shard to its replica, which serves with the "
    "primary down") {
  ClusterSpec spec = LocalCluster(2, /*replicas_per_shard=*/1);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  SyncHttp http;
  const std::string key = KeyOwnedBy(spec, 1, "replica-read");
  const std::string target = "/kv/" + key + "?read=replica";
  REQUIRE(Is2xx(http.Send(cluster.address(0), "PUT", "/kv/" + key, "replicated").status));
  // The replica follows asynchronously: wait until it has the key.
  REQUIRE(WaitUntil(
      [&] { return http.Get(cluster.replica(1).address(), "/kv/" + key).status == 200; }, 10'000));

  auto forwarded_to_replica = [&] {
    const Json stats = GetJson(http, cluster.address(0), "/stats");
    const Json* f = JsonField(stats, "forwarding");
    REQUIRE_MESSAGE(f != nullptr, "/stats has no forwarding object");
    return JsonInt(*f, "to_replica");
  };
  int64_t before = forwarded_to_replica();
  Reply r = http.Get(cluster.address(0), target);
  CHECK_MESSAGE(r.status == 200, r);
  CHECK(r.body == "replicated");
  CHECK(forwarded_to_replica() == before + 1);

  // The owner's primary is gone; its replica still answers reads that ask for it.
  cluster.primary(1).Kill();
  Reply down = http.Get(cluster.address(0), target);
  CHECK_MESSAGE(down.status == 200, down);
  CHECK(down.body == "replicated");
  Reply plain = http.Get(cluster.address(0), "/kv/" + key);
  CHECK_MESSAGE((plain.status == 502 || plain.status == 503 || plain.status == 504), plain);
}

}  // namespace
}  // namespace distkv::clustertest
