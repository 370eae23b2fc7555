// Authentication and roles through real processes ([auth] in sharding.toml).
//
// Every class of endpoint is asked with no token, a wrong token, each role's
// token and the cluster secret, and must answer exactly the expected status;
// a read token must not write by going through a node that forwards; a
// replica acknowledgement without the cluster secret (or from an address that
// is no replica of the shard) must be refused and must not count towards a
// write's acknowledgements, while a real replica's acks do.
#include <thread>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

const std::string kSecret = "cluster-secret-0123456789abcdef";
const std::string kRead = "read-token-0123456789abcdef";
const std::string kWrite = "write-token-0123456789abcdef";
const std::string kAdmin = "admin-token-0123456789abcdef";

ClusterSpec WithAuth(ClusterSpec spec) {
  spec.SetString("auth", "cluster_secret", kSecret);
  spec.settings["auth"]["tokens"] =
      "[ { token = \"" + kRead + "\", role = \"read\" }, { token = \"" + kWrite +
      "\", role = \"write\" }, { token = \"" + kAdmin + "\", role = \"admin\" } ]";
  return spec;
}

std::vector<net::Header> Bearer(const std::string& token) {
  if (token.empty()) return {};
  return {{"Authorization", "Bearer " + token}};
}

// A key the shard at position `shard` owns.
std::string KeyOwnedBy(const TestCluster& cluster, size_t shard, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string key = prefix + std::to_string(i);
    if (cluster.OwnerOf(key) == shard) return key;
  }
}

struct Credential {
  const char* name;
  std::string token;
};

// The primary's replication history, as a replica's ack names it.
std::string HistoryOf(SyncHttp& http, const std::string& node, const std::string& token) {
  Json stats = GetJson(http, node, "/stats", Bearer(token));
  REQUIRE(stats["replication"]["history"].is_string());
  return stats["replication"]["history"].get<std::string>();
}

TEST_CASE("auth: every endpoint class answers no token, a wrong token and each role exactly") {
  TestCluster cluster(WithAuth(LocalCluster(1, 1)));
  cluster.Start();
  const std::string node = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http;
  REQUIRE(Is2xx(http.Send(node, "PUT", "/kv/present", "v", Bearer(kWrite)).status));

  const std::vector<Credential> who = {{"none", ""},      {"wrong", "not-a-token-of-this-cluster"},
                                       {"read", kRead},   {"write", kWrite},
                                       {"admin", kAdmin}, {"secret", kSecret}};
  struct Case {
    const char* method;
    std::string target;
    std::vector<int> expected;  // one status per entry of `who`
    std::string body = "";
  };
  const std::string ack = "/internal/replica-ack?replica=" + PercentEncode(replica) +
                          "&lsn=0&history=" + HistoryOf(http, node, kRead);
  const std::vector<Case> cases = {
      // open
      {"GET", "/health", {200, 200, 200, 200, 200, 200}},
      // reads, both APIs
      {"GET", "/kv/present", {401, 401, 200, 200, 200, 200}},
      {"GET", "/get?key=present", {401, 401, 200, 200, 200, 200}},
      {"GET", "/kv/absent", {401, 401, 404, 404, 404, 404}},
      // writes, both APIs
      {"PUT", "/kv/present", {401, 401, 403, 200, 200, 200}},
      {"GET", "/set?key=seed&value=v", {401, 401, 403, 201, 200, 200}},
      {"DELETE", "/kv/absent", {401, 401, 403, 404, 404, 404}},
      // scans and batches
      {"GET", "/kv?limit=10", {401, 401, 200, 200, 200, 200}},
      {"POST", "/kv/_mget", {401, 401, 200, 200, 200, 200}, "[\"present\"]"},
      {"POST", "/kv/_mput", {401, 401, 403, 200, 200, 200}, "{\"batch\":\"v\"}"},
      // status pages need read
      {"GET", "/stats", {401, 401, 200, 200, 200, 200}},
      {"GET", "/metrics", {401, 401, 200, 200, 200, 200}},
      {"GET", "/cluster", {401, 401, 200, 200, 200, 200}},
      // admin
      {"GET", "/internal/digest", {401, 401, 403, 403, 200, 200}},
      {"GET", "/admin/migrate", {401, 401, 403, 403, 200, 200}},
      {"POST", "/purge", {401, 401, 403, 403, 200, 200}},
      {"POST", "/admin/promote", {401, 401, 403, 403, 409, 409}},
      // node to node only
      {"POST", ack, {401, 401, 403, 403, 403, 200}},
      // (the secret gets as far as the shard check: 409 for a shard it is not)
      {"GET", "/internal/replicate?from=0&replica=x&shard=nope", {401, 401, 403, 403, 403, 409}},
      {"GET", "/internal/scan?shard=Delhi&hash=0&limit=10", {401, 401, 403, 403, 403, 200}},
      {"GET", "/internal/cluster-map", {401, 401, 403, 403, 403, 200}},
      {"POST", "/internal/cluster-map", {401, 401, 403, 403, 403, 400}, "not a map"},
      {"GET", "/internal/slots/snapshot", {401, 401, 403, 403, 403, 400}},
      {"POST", "/internal/slots/pause", {401, 401, 403, 403, 403, 400}},
      // an unknown path tells nothing to a sender without a credential
      {"GET", "/nowhere", {401, 401, 404, 404, 404, 404}},
  };
  for (const Case& c : cases) {
    for (size_t i = 0; i < who.size(); ++i) {
      // PUT twice in a row must see the key present (200), as the table says.
      Reply r = http.Send(node, c.method, c.target, c.method == std::string("PUT") ? "v" : c.body,
                          Bearer(who[i].token));
      CHECK_MESSAGE(r.status == c.expected[i], std::string(c.method)
                                                   << " " << c.target << " as "
                                                   << std::string(who[i].name) << ": " << r);
      if (r.status == 401) {
        CHECK(r.Header("WWW-Authenticate").rfind("Bearer realm=\"distkv\"", 0) == 0);
        CHECK(IsJsonError(r));
        CHECK((r.Header("WWW-Authenticate").find("invalid_token") != std::string::npos) ==
              !who[i].token.empty());
      }
      if (r.status == 403) CHECK(IsJsonError(r));
    }
  }
  // A manual compaction: refused below admin; admin and the secret get it
  // started (202), or told that one runs (409) or that there is nothing to do (200).
  for (size_t i = 0; i < who.size(); ++i) {
    Reply r = http.Send(node, "POST", "/admin/compact", "", Bearer(who[i].token));
    const std::string as = "POST /admin/compact as " + std::string(who[i].name);
    if (i < 2) CHECK_MESSAGE(r.status == 401, as << ": " << r);
    if (i == 2 || i == 3) CHECK_MESSAGE(r.status == 403, as << ": " << r);
    if (i >= 4)
      CHECK_MESSAGE((r.status == 200 || r.status == 202 || r.status == 409), as << ": " << r);
  }
  // The real replica follows with the secret its config gives it.
  CHECK(
      WaitUntil([&] { return http.Get(replica, "/kv/seed", Bearer(kRead)).status == 200; }, 10000));
  // No log line holds a token or the secret.
  for (Process* p :
       {static_cast<Process*>(&cluster.primary(0)), static_cast<Process*>(&cluster.replica(0))}) {
    const std::string log = p->LogTail(1000);
    for (const std::string& s : {kSecret, kRead, kWrite, kAdmin})
      CHECK(log.find(s) == std::string::npos);
  }
}

TEST_CASE("auth: a read token cannot write through a forwarding node; roles travel with forwards") {
  TestCluster cluster(WithAuth(LocalCluster(2)));
  cluster.Start();
  const std::string key = KeyOwnedBy(cluster, 1, "fwd-");
  const std::string via = cluster.address(0);  // does not own key
  const std::string owner = cluster.address(1);
  SyncHttp http;

  Reply r = http.Send(via, "PUT", "/kv/" + key, "from-read", Bearer(kRead));
  CHECK_MESSAGE(r.status == 403, r);
  r = http.Send(via, "GET", "/set?key=" + key + "&value=x", "", Bearer(kRead));
  CHECK_MESSAGE(r.status == 403, r);
  r = http.Get(owner, "/kv/" + key, Bearer(kAdmin));
  CHECK_MESSAGE(r.status == 404, r);

  r = http.Send(via, "PUT", "/kv/" + key, "from-write", Bearer(kWrite));
  CHECK_MESSAGE(r.status == 201, r);
  r = http.Get(via, "/kv/" + key, Bearer(kRead));
  CHECK_MESSAGE(r.status == 200, r);
  CHECK(r.body == "from-write");
  CHECK(r.Header("X-Distkv-Shard") == cluster.spec().shards[1].name);

  // The owner itself keeps the client's role: a forwarded write that carries
  // the cluster secret but names the read role is refused there too.
  std::vector<net::Header> forged = Bearer(kSecret);
  forged.push_back({"X-Distkv-Role", "read"});
  forged.push_back({"X-Distkv-Hop", cluster.spec().shards[0].name});
  r = http.Send(owner, "PUT", "/kv/" + key, "forged", forged);
  CHECK_MESSAGE(r.status == 403, r);
  forged[1].value = "write";
  r = http.Send(owner, "PUT", "/kv/" + key, "as-write", forged);
  CHECK_MESSAGE(r.status == 200, r);
  // A role header without the secret grants nothing.
  std::vector<net::Header> bare = Bearer(kRead);
  bare.push_back({"X-Distkv-Role", "admin"});
  r = http.Send(owner, "PUT", "/kv/" + key, "bare", bare);
  CHECK_MESSAGE(r.status == 403, r);
  CHECK(http.Get(owner, "/kv/" + key, Bearer(kRead)).body == "as-write");
}

// Sends PUT /kv/key?ack=replica on its own thread (it blocks until the ack
// or the ack timeout) and returns the reply through join().
class BackgroundPut {
 public:
  BackgroundPut(const std::string& node, const std::string& key)
      : thread_([this, node, key] {
          SyncHttp http;
          reply_ = http.Send(node, "PUT", "/kv/" + key + "?ack=replica", "v", Bearer(kWrite));
        }) {}
  Reply Join() {
    thread_.join();
    return reply_;
  }

 private:
  Reply reply_;
  std::thread thread_;
};

TEST_CASE("auth: a replica ack without the secret is refused and does not count toward acks") {
  ClusterSpec spec = WithAuth(LocalCluster(1, 1));
  spec.Set("replication", "ack_timeout_ms", 1500);
  TestCluster cluster(spec);
  cluster.primary(0).StartAndWait();  // the configured replica never runs: acks are forged
  const std::string node = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http;
  auto durable = [&] {
    return JsonInt(GetJson(http, node, "/stats", Bearer(kRead)), "durable_lsn");
  };
  auto ack = [&](const std::string& from, uint64_t lsn, std::vector<net::Header> headers) {
    return http.Send(node, "POST",
                     "/internal/replica-ack?replica=" + PercentEncode(from) +
                         "&lsn=" + std::to_string(lsn) + "&history=" + HistoryOf(http, node, kRead),
                     "", std::move(headers));
  };

  BackgroundPut forged(node, "k1");
  REQUIRE(WaitUntil([&] { return durable() == 1; }, 10000));
  CHECK(ack(replica, 1, {}).status == 401);
  CHECK(ack(replica, 1, Bearer("cluster-secret-but-not-this-one")).status == 401);
  CHECK(ack(replica, 1, Bearer(kAdmin)).status == 403);
  // The secret from an address that is no replica of this shard.
  CHECK(ack("127.0.0.1:1", 1, Bearer(kSecret)).status == 403);
  Reply r = forged.Join();
  CHECK_MESSAGE(r.status == 504, r);

  // The same ack with the secret, from the configured replica, counts: the
  // refusals above were about the credential, not a broken ack path.
  BackgroundPut real(node, "k2");
  REQUIRE(WaitUntil([&] { return durable() == 2; }, 10000));
  Reply a = ack(replica, 2, Bearer(kSecret));
  CHECK_MESSAGE(a.status == 200, a);
  r = real.Join();
  CHECK_MESSAGE(r.status == 201, r);
}

TEST_CASE("auth: a replica follows and acknowledges with the cluster secret") {
  TestCluster cluster(WithAuth(LocalCluster(1, 1)));
  cluster.Start();
  const std::string node = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http;
  for (int i = 0; i < 20; ++i) {
    Reply r =
        http.Send(node, "PUT", "/kv/r" + std::to_string(i) + "?ack=replica", "v", Bearer(kWrite));
    REQUIRE_MESSAGE(r.status == 201, r);
  }
  const Json p = GetJson(http, node, "/internal/digest", Bearer(kAdmin));
  const Json q = GetJson(http, replica, "/internal/digest", Bearer(kAdmin));
  CHECK(JsonInt(p, "keys") == 20);
  CHECK(JsonText(p, "digest") == JsonText(q, "digest"));
}

}  // namespace
}  // namespace distkv::clustertest
