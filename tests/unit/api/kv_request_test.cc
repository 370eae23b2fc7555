// From HTTP request to key-value operation: both APIs, percent-decoding,
// conditions, and the error each bad request gets.
#include <doctest/doctest.h>

#include "src/api/kv_request.h"

using distkv::Endpoint;
using distkv::KvOp;
using distkv::ParsedRequest;

namespace {

distkv::net::HttpRequest Req(std::string method, std::string target, std::string body = "") {
  distkv::net::HttpRequest r;
  r.method = std::move(method);
  r.target = target;
  auto q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  r.body = std::move(body);
  return r;
}

struct Outcome {
  bool ok;
  ParsedRequest parsed;
  distkv::net::HttpResponse error;
};

Outcome Parse(distkv::net::HttpRequest r, distkv::KeyLimits limits = {}) {
  Outcome o;
  o.ok = distkv::ParseRequest(r, limits, &o.parsed, &o.error);
  return o;
}

}  // namespace

TEST_CASE("/kv/{key} maps methods to operations and decodes the key") {
  Outcome get = Parse(Req("GET", "/kv/a%20b%2Fc"));
  REQUIRE(get.ok);
  CHECK(get.parsed.endpoint == Endpoint::kKv);
  CHECK(get.parsed.kv.op == KvOp::kGet);
  CHECK(get.parsed.kv.key == "a b/c");

  Outcome put = Parse(Req("PUT", "/kv/k", "value"));
  REQUIRE(put.ok);
  CHECK(put.parsed.kv.op == KvOp::kPut);
  CHECK(put.parsed.kv.value == "value");

  Outcome del = Parse(Req("DELETE", "/kv/k"));
  REQUIRE(del.ok);
  CHECK(del.parsed.kv.op == KvOp::kDelete);

  Outcome head = Parse(Req("HEAD", "/kv/k"));
  REQUIRE(head.ok);
  CHECK(head.parsed.kv.op == KvOp::kGet);

  Outcome binary = Parse(Req("GET", "/kv/%00%FF"));
  REQUIRE(binary.ok);
  CHECK(binary.parsed.kv.key == std::string("\0\xff", 2));
}

TEST_CASE("the seed API takes keys and values from the query string") {
  Outcome set = Parse(Req("GET", "/set?key=a+b&value=x%26y"));
  REQUIRE(set.ok);
  CHECK(set.parsed.kv.op == KvOp::kPut);
  CHECK(set.parsed.kv.key == "a b");
  CHECK(set.parsed.kv.value == "x&y");

  Outcome store = Parse(Req("POST", "/store?key=k", "from body"));
  REQUIRE(store.ok);
  CHECK(store.parsed.kv.value == "from body");

  for (const char* path : {"/get?key=k", "/retrieve?key=k"}) {
    Outcome o = Parse(Req("GET", path));
    REQUIRE(o.ok);
    CHECK(o.parsed.kv.op == KvOp::kGet);
    CHECK(o.parsed.kv.key == "k");
  }
  Outcome del = Parse(Req("POST", "/delete?key=k"));
  REQUIRE(del.ok);
  CHECK(del.parsed.kv.op == KvOp::kDelete);
}

TEST_CASE("bad requests get the status that means them") {
  CHECK(Parse(Req("GET", "/kv/")).error.status == 400);        // empty key
  CHECK(Parse(Req("GET", "/kv/%zz")).error.status == 400);     // bad escape
  CHECK(Parse(Req("GET", "/get")).error.status == 400);        // no key
  CHECK(Parse(Req("GET", "/set?key=k")).error.status == 400);  // no value
  CHECK(Parse(Req("PATCH", "/kv/k")).error.status == 405);
  CHECK(Parse(Req("PATCH", "/kv/k")).error.header("Allow") != nullptr);
  CHECK(Parse(Req("PUT", "/get?key=k")).error.status == 405);
  CHECK(Parse(Req("GET", "/nowhere")).error.status == 404);
  CHECK(Parse(Req("POST", "/health")).error.status == 405);

  distkv::KeyLimits small;
  small.max_key_bytes = 3;
  small.max_value_bytes = 4;
  CHECK(Parse(Req("GET", "/kv/abcd"), small).error.status == 400);
  CHECK(Parse(Req("PUT", "/kv/abc", "12345"), small).error.status == 413);
  CHECK(Parse(Req("PUT", "/kv/abc", "1234"), small).ok);

  Outcome o = Parse(Req("GET", "/kv/%zz"));
  CHECK(o.error.body.find("\"error\"") != std::string::npos);
  CHECK(o.error.body.find("\"message\"") != std::string::npos);
}

TEST_CASE("conditions and flags") {
  auto r = Req("PUT", "/kv/k?ack=replica", "v");
  r.headers.push_back({"if-match", "\"42\""});
  Outcome o = Parse(r);
  REQUIRE(o.ok);
  CHECK(o.parsed.kv.has_if_match);
  CHECK(o.parsed.kv.if_match == "42");
  CHECK(o.parsed.kv.ack_replica);

  auto n = Req("PUT", "/kv/k", "v");
  n.headers.push_back({"If-None-Match", "*"});
  CHECK(Parse(n).parsed.kv.if_none_match_star);

  auto bad = Req("PUT", "/kv/k", "v");
  bad.headers.push_back({"If-Match", "W/\"x\""});
  CHECK(Parse(bad).error.status == 400);

  auto rr = Req("GET", "/kv/k?read=replica");
  CHECK(Parse(rr).parsed.kv.read_replica);
}

TEST_CASE("net::PercentEncode round-trips any key") {
  std::string key("a b/c?d%\0\xff~", 11);
  std::string decoded;
  REQUIRE(distkv::net::PercentDecode(distkv::net::PercentEncode(key), &decoded, false));
  CHECK(decoded == key);
  CHECK(distkv::net::PercentEncode("Az09-._~") == "Az09-._~");
}

TEST_CASE("a batch takes no query parameter; a TTL or ?ack=replica on it is 501, not dropped") {
  Outcome plain = Parse(Req("POST", "/kv/_mput", "{}"));
  REQUIRE(plain.ok);
  CHECK(plain.parsed.endpoint == Endpoint::kMput);
  CHECK(Parse(Req("POST", "/kv/_mget", "[]")).parsed.endpoint == Endpoint::kMget);

  for (const char* target :
       {"/kv/_mput?ttl=30", "/kv/_mput?ttl=0", "/kv/_mput?ack=replica", "/kv/_mget?ack=replica"}) {
    Outcome o = Parse(Req("POST", target, "{}"));
    CHECK_MESSAGE(!o.ok, target);
    CHECK_MESSAGE(o.error.status == 501, target);
    CHECK_MESSAGE(o.error.body.find("\"not_implemented\"") != std::string::npos, target);
  }
  distkv::net::HttpRequest header = Req("POST", "/kv/_mput", "{}");
  header.headers.push_back({"X-Distkv-TTL", "30"});
  Outcome by_header = Parse(header);
  CHECK(!by_header.ok);
  CHECK(by_header.error.status == 501);
  CHECK(by_header.error.body.find("single PUTs") != std::string::npos);

  for (const char* target : {"/kv/_mget?read=replica", "/kv/_mput?limit=3"}) {
    Outcome o = Parse(Req("POST", target, "{}"));
    CHECK_MESSAGE(!o.ok, target);
    CHECK_MESSAGE(o.error.status == 400, target);
    CHECK_MESSAGE(o.error.body.find("\"unknown_parameter\"") != std::string::npos, target);
    CHECK_MESSAGE(o.error.body.find("it takes none") != std::string::npos, o.error.body);
  }
  // GET and PUT of those names still address keys.
  Outcome key = Parse(Req("PUT", "/kv/_mput?ttl=30", "v"));
  REQUIRE(key.ok);
  CHECK(key.parsed.endpoint == Endpoint::kKv);
  CHECK(key.parsed.kv.ttl_s == 30);
}

TEST_CASE("a scan takes its parameters once each and refuses any other") {
  Outcome all = Parse(Req("GET", "/kv?prefix=user%3A&limit=7&values=true&cursor="));
  REQUIRE(all.ok);
  CHECK(all.parsed.endpoint == Endpoint::kScan);
  CHECK(all.parsed.scan.prefix == "user:");
  CHECK(all.parsed.scan.limit == 7);
  CHECK(all.parsed.scan.values);
  Outcome shard = Parse(Req("GET", "/internal/scan?shard=A&hash=ff&limit=3&prefix=p&values=1"));
  REQUIRE(shard.ok);
  CHECK(shard.parsed.endpoint == Endpoint::kShardScan);
  CHECK(shard.parsed.scan.hash == 0xff);

  for (const char* target :
       {"/kv?limt=10", "/kv?read=replica", "/kv?hash=00", "/internal/scan?shard=A&cursor=0-0-0"}) {
    Outcome o = Parse(Req("GET", target));
    CHECK_MESSAGE(!o.ok, target);
    CHECK_MESSAGE(o.error.status == 400, target);
    CHECK_MESSAGE(o.error.body.find("\"unknown_parameter\"") != std::string::npos, o.error.body);
  }
  for (const char* target : {"/kv?limit=5&limit=6", "/kv?prefix=a&prefix=b"}) {
    Outcome o = Parse(Req("GET", target));
    CHECK_MESSAGE(o.error.status == 400, target);
    CHECK_MESSAGE(o.error.body.find("\"duplicate_parameter\"") != std::string::npos, o.error.body);
  }
}
