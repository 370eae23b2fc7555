// Authenticator: who a request comes from and what its role allows.
#include "src/api/auth.h"

#include <doctest/doctest.h>

using namespace distkv;

namespace {

const std::string kSecret = "the-cluster-secret-000";

Authenticator Make() {
  AuthConfig c;
  c.enabled = true;
  c.cluster_secret = kSecret;
  c.tokens = {{"reader-token-0000000", Role::kRead},
              {"writer-token-0000000", Role::kWrite},
              {"admin-token-00000000", Role::kAdmin}};
  return Authenticator(c);
}

net::HttpRequest WithAuth(const std::string& value) {
  net::HttpRequest r;
  if (!value.empty()) r.headers.push_back({"Authorization", value});
  return r;
}

ParsedRequest Kv(KvOp op) {
  ParsedRequest p;
  p.endpoint = Endpoint::kKv;
  p.kv.op = op;
  return p;
}

}  // namespace

TEST_CASE("ConstantTimeEquals is equality, lengths included") {
  CHECK(ConstantTimeEquals("abc", "abc"));
  CHECK(ConstantTimeEquals("", ""));
  CHECK_FALSE(ConstantTimeEquals("abc", "abd"));
  CHECK_FALSE(ConstantTimeEquals("abc", "abcd"));
  CHECK_FALSE(ConstantTimeEquals("abcd", "abc"));
  CHECK_FALSE(ConstantTimeEquals("", "a"));
  CHECK_FALSE(ConstantTimeEquals(std::string_view("a\0", 2), "a"));
  // Long enough to be compared eight bytes at a time: a difference in any
  // byte, in a whole word or in the tail, is seen.
  const std::string token = "writer-token-0123456789abcdefghijklmn";  // 37 bytes
  CHECK(ConstantTimeEquals(token, std::string(token)));
  for (size_t i = 0; i < token.size(); ++i) {
    std::string other = token;
    other[i] ^= 0x01;
    CHECK_FALSE(ConstantTimeEquals(token, other));
    CHECK_FALSE(ConstantTimeEquals(other, token));
  }
  CHECK_FALSE(ConstantTimeEquals(token, token.substr(0, 32)));
  CHECK_FALSE(ConstantTimeEquals(token.substr(0, 32), token));
  CHECK_FALSE(ConstantTimeEquals(token + std::string(8, '\0'), token));
}

TEST_CASE("with auth off every request is allowed everything") {
  Authenticator off;
  auto id = off.Identify(WithAuth(""));
  net::HttpResponse error;
  CHECK(off.Allow(id, Role::kNode, &error));
  std::vector<net::Header> headers;
  off.AddPeerCredentials(&headers, Role::kRead);
  CHECK(headers.empty());
}

TEST_CASE("tokens map to their roles; the scheme is case-insensitive") {
  Authenticator a = Make();
  CHECK(a.Identify(WithAuth("Bearer reader-token-0000000")).role == Role::kRead);
  CHECK(a.Identify(WithAuth("bearer writer-token-0000000")).role == Role::kWrite);
  CHECK(a.Identify(WithAuth("Bearer admin-token-00000000")).role == Role::kAdmin);
  CHECK(a.Identify(WithAuth("Bearer " + kSecret)).role == Role::kNode);
  auto bad = a.Identify(WithAuth("Bearer reader-token-000000"));  // one byte short
  CHECK(bad.presented);
  CHECK_FALSE(bad.valid);
  CHECK_FALSE(a.Identify(WithAuth("Basic cmVhZGVyOnRva2Vu")).valid);
  CHECK_FALSE(a.Identify(WithAuth("Bearer ")).valid);
  CHECK_FALSE(a.Identify(WithAuth("")).presented);
}

TEST_CASE("401 with a challenge without a valid token, 403 for too weak a role") {
  Authenticator a = Make();
  net::HttpResponse error;
  CHECK_FALSE(a.Allow(a.Identify(WithAuth("")), Role::kRead, &error));
  CHECK(error.status == 401);
  CHECK(*error.header("WWW-Authenticate") == "Bearer realm=\"distkv\"");
  CHECK_FALSE(a.Allow(a.Identify(WithAuth("Bearer nope")), Role::kRead, &error));
  CHECK(error.status == 401);
  CHECK(error.header("WWW-Authenticate")->find("invalid_token") != std::string::npos);
  CHECK(error.body.find("nope") == std::string::npos);  // never echoed
  CHECK_FALSE(a.Allow(a.Identify(WithAuth("Bearer reader-token-0000000")), Role::kWrite, &error));
  CHECK(error.status == 403);
  CHECK(a.Allow(a.Identify(WithAuth("")), Role::kNone, &error));  // /health
  CHECK(a.Allow(a.Identify(WithAuth("Bearer admin-token-00000000")), Role::kAdmin, &error));
  CHECK_FALSE(a.Allow(a.Identify(WithAuth("Bearer admin-token-00000000")), Role::kNode, &error));
  CHECK(error.status == 403);
}

TEST_CASE("a node acting for a client gets the client's role, and only with the secret") {
  Authenticator a = Make();
  std::vector<net::Header> headers;
  a.AddPeerCredentials(&headers, Role::kRead);
  net::HttpRequest forwarded;
  forwarded.headers = headers;
  CHECK(a.Identify(forwarded).role == Role::kRead);

  net::HttpRequest bogus = WithAuth("Bearer " + kSecret);
  bogus.headers.push_back({"X-Distkv-Role", "node"});  // not a role a header can grant
  CHECK(a.Identify(bogus).role == Role::kNone);

  net::HttpRequest client = WithAuth("Bearer reader-token-0000000");
  client.headers.push_back({"X-Distkv-Role", "admin"});  // ignored without the secret
  CHECK(a.Identify(client).role == Role::kRead);

  std::vector<net::Header> own;
  a.AddPeerCredentials(&own);
  REQUIRE(own.size() == 1);
  CHECK(own[0].value == "Bearer " + kSecret);
}

TEST_CASE("RequiredRole: health open, reads read, writes write, admin and internal above") {
  CHECK(RequiredRole(Kv(KvOp::kGet), Role::kRead) == Role::kRead);
  CHECK(RequiredRole(Kv(KvOp::kPut), Role::kRead) == Role::kWrite);
  CHECK(RequiredRole(Kv(KvOp::kDelete), Role::kRead) == Role::kWrite);
  ParsedRequest p;
  p.endpoint = Endpoint::kHealth;
  CHECK(RequiredRole(p, Role::kRead) == Role::kNone);
  p.endpoint = Endpoint::kStats;
  CHECK(RequiredRole(p, Role::kRead) == Role::kRead);
  CHECK(RequiredRole(p, Role::kNone) == Role::kNone);  // status_role = "none"
  p.endpoint = Endpoint::kCompact;
  CHECK(RequiredRole(p, Role::kRead) == Role::kAdmin);
  p.endpoint = Endpoint::kReplicaAck;
  CHECK(RequiredRole(p, Role::kRead) == Role::kNode);
  p.endpoint = Endpoint::kReplicate;
  CHECK(RequiredRole(p, Role::kRead) == Role::kNode);
  // Scans and batches: reading many keys needs read, writing them write; a
  // shard's scan page is asked for by nodes only.
  p.endpoint = Endpoint::kScan;
  CHECK(RequiredRole(p, Role::kRead) == Role::kRead);
  p.endpoint = Endpoint::kMget;
  CHECK(RequiredRole(p, Role::kRead) == Role::kRead);
  p.endpoint = Endpoint::kMput;
  CHECK(RequiredRole(p, Role::kRead) == Role::kWrite);
  p.endpoint = Endpoint::kShardScan;
  CHECK(RequiredRole(p, Role::kRead) == Role::kNode);
}
