// The HTTP API of one node serving one shard, through a real process:
// both APIs (/kv/{key} and the seed projects' /set, /get, ...), key
// decoding, ETags and conditional requests, the error statuses and their
// JSON bodies, /stats, and the command-line flags.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"
#include "tests/cluster/raw_http.h"
#include "tests/common/prometheus_text.h"

namespace distkv::clustertest {
namespace {

// One shard, one node, started; fsync "never" so the API tests do not wait
// on the disk (durability_test.cc covers "always").
struct SingleNode {
  TestCluster cluster;
  SyncHttp http;
  std::string addr;
  std::string shard;

  SingleNode() : cluster(Spec()), addr(cluster.address(0)), shard(cluster.spec().shards[0].name) {
    cluster.Start();
  }
  static ClusterSpec Spec() {
    ClusterSpec spec = LocalCluster(1);
    spec.fsync = "never";
    return spec;
  }
};

std::string Kv(std::string_view key) { return "/kv/" + PercentEncode(key); }

TEST_CASE("node: PUT /kv stores a value, GET returns it with the PUT's ETag, DELETE removes it") {
  SingleNode n;
  Reply put = n.http.Send(n.addr, "PUT", "/kv/alpha", "one");
  REQUIRE_MESSAGE(Is2xx(put.status), put);
  uint64_t put_lsn = 0;
  CHECK_MESSAGE(ParseEtag(put.Header("ETag"), &put_lsn), put);

  Reply get = n.http.Get(n.addr, "/kv/alpha");
  CHECK_MESSAGE(get.status == 200, get);
  CHECK(get.body == "one");
  CHECK(get.Header("ETag") == put.Header("ETag"));

  Reply del = n.http.Send(n.addr, "DELETE", "/kv/alpha");
  CHECK_MESSAGE(del.status == 204, del);
  CHECK(del.body.empty());

  Reply gone = n.http.Get(n.addr, "/kv/alpha");
  CHECK_MESSAGE(gone.status == 404, gone);
  CHECK(IsJsonError(gone));

  Reply again = n.http.Send(n.addr, "DELETE", "/kv/alpha");
  CHECK_MESSAGE(again.status == 404, again);
  CHECK(IsJsonError(again));
}

TEST_CASE("node: a later PUT replaces the value and carries a larger LSN in its ETag") {
  SingleNode n;
  Reply first = n.http.Send(n.addr, "PUT", "/kv/k", "v1");
  Reply second = n.http.Send(n.addr, "PUT", "/kv/k", "v2");
  REQUIRE(Is2xx(first.status));
  REQUIRE(Is2xx(second.status));
  uint64_t lsn1 = 0, lsn2 = 0;
  REQUIRE(ParseEtag(first.Header("ETag"), &lsn1));
  REQUIRE(ParseEtag(second.Header("ETag"), &lsn2));
  CHECK(lsn2 > lsn1);
  Reply get = n.http.Get(n.addr, "/kv/k");
  CHECK(get.status == 200);
  CHECK(get.body == "v2");
  CHECK(get.Header("ETag") == second.Header("ETag"));
}

TEST_CASE("node: the seed API /set, /store, /get, /retrieve, /delete acts like /kv") {
  SingleNode n;
  // Writes, with every method the seed API takes.
  struct Write {
    std::string method;
    std::string route;
    std::string key;
  };
  const Write writes[] = {{"GET", "/set", "s-get"},     {"POST", "/set", "s-post"},
                          {"PUT", "/set", "s-put"},     {"GET", "/store", "t-get"},
                          {"POST", "/store", "t-post"}, {"PUT", "/store", "t-put"}};
  for (const Write& w : writes) {
    CAPTURE(w.method);
    CAPTURE(w.route);
    Reply r = n.http.Send(n.addr, w.method, w.route + "?key=" + w.key + "&value=val-" + w.key);
    CHECK_MESSAGE(Is2xx(r.status), r);
    uint64_t lsn = 0;
    CHECK_MESSAGE(ParseEtag(r.Header("ETag"), &lsn), r);
  }
  // Reads, through both read routes and /kv.
  for (const Write& w : writes) {
    std::string expected = "val-" + w.key;
    for (const std::string route : {"/get?key=", "/retrieve?key="}) {
      Reply r = n.http.Get(n.addr, route + w.key);
      CHECK_MESSAGE(r.status == 200, route << w.key << ": " << r);
      CHECK(r.body == expected);
    }
    Reply kv = n.http.Get(n.addr, Kv(w.key));
    CHECK(kv.status == 200);
    CHECK(kv.body == expected);
  }
  // A value written through /kv is readable through /get with the same ETag.
  Reply put = n.http.Send(n.addr, "PUT", "/kv/cross", "x");
  Reply get = n.http.Get(n.addr, "/get?key=cross");
  CHECK(get.status == 200);
  CHECK(get.body == "x");
  CHECK(get.Header("ETag") == put.Header("ETag"));
  // Deletes, with every method /delete takes: 204 the first time, 404 after.
  const std::pair<std::string, std::string> deleted[] = {
      {"GET", "s-get"}, {"POST", "s-post"}, {"DELETE", "s-put"}};
  for (const auto& [method, key] : deleted) {
    CAPTURE(method);
    Reply r = n.http.Send(n.addr, method, "/delete?key=" + key);
    CHECK_MESSAGE(r.status == 204, r);
    Reply again = n.http.Send(n.addr, method, "/delete?key=" + key);
    CHECK_MESSAGE(again.status == 404, again);
    CHECK(IsJsonError(again));
    CHECK(n.http.Get(n.addr, Kv(key)).status == 404);
  }
}

TEST_CASE("node: keys are percent-decoded in paths and query strings") {
  SingleNode n;
  // Path: %2F is a slash inside the key, lower-case hex works, '+' is literal.
  REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", "/kv/a%2Fb%20c", "slash-space").status));
  Reply r = n.http.Get(n.addr, "/get?key=a%2fb+c");  // in a query, '+' is a space
  CHECK_MESSAGE(r.status == 200, r);
  CHECK(r.body == "slash-space");

  REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", "/kv/a+b", "plus").status));
  REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", "/kv/a%20b", "space").status));
  CHECK(n.http.Get(n.addr, "/get?key=a%2Bb").body == "plus");
  CHECK(n.http.Get(n.addr, "/get?key=a+b").body == "space");
  CHECK(n.http.Get(n.addr, "/kv/a+b").body == "plus");

  // Values in the query are decoded too.
  REQUIRE(Is2xx(n.http.Get(n.addr, "/set?key=q1&value=hello%20world%26more%3D1").status));
  CHECK(n.http.Get(n.addr, "/kv/q1").body == "hello world&more=1");
  REQUIRE(Is2xx(n.http.Get(n.addr, "/set?key=q2&value=a+b").status));
  CHECK(n.http.Get(n.addr, "/kv/q2").body == "a b");

  // Keys are bytes: every byte value, including NUL and non-UTF-8.
  std::string binary_key;
  for (int c = 0; c < 256; ++c) binary_key.push_back(static_cast<char>(c));
  REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", Kv(binary_key), "all-bytes").status));
  Reply b = n.http.Get(n.addr, "/get?key=" + PercentEncode(binary_key));
  CHECK_MESSAGE(b.status == 200, b);
  CHECK(b.body == "all-bytes");

  std::string utf8_key = "ключ/🔑?#&=";
  REQUIRE(Is2xx(n.http.Get(n.addr, "/set?key=" + PercentEncode(utf8_key) + "&value=utf8").status));
  CHECK(n.http.Get(n.addr, Kv(utf8_key)).body == "utf8");
}

TEST_CASE("node: a malformed percent escape is a 400 with a JSON error") {
  SingleNode n;
  for (const std::string target :
       {"/kv/bad%zz", "/kv/bad%4", "/get?key=bad%g0", "/set?key=k&value=%"}) {
    CAPTURE(target);
    Reply r = n.http.Get(n.addr, target);
    CHECK_MESSAGE(r.status == 400, r);
    CHECK(IsJsonError(r));
  }
  CHECK(n.http.Get(n.addr, "/get?key=k").status == 404);
}

TEST_CASE("node: an empty or missing key is a 400 with a JSON error") {
  SingleNode n;
  Reply put = n.http.Send(n.addr, "PUT", "/kv/", "v");
  CHECK_MESSAGE(put.status == 400, put);
  CHECK(IsJsonError(put));
  for (const std::string target :
       {"/get", "/get?key=", "/retrieve?value=x", "/set?value=x", "/set?key=&value=x", "/delete"}) {
    CAPTURE(target);
    Reply r = n.http.Get(n.addr, target);
    CHECK_MESSAGE(r.status == 400, r);
    CHECK(IsJsonError(r));
  }
}

TEST_CASE("node: absent keys are 404 with a JSON error on every read and delete route") {
  SingleNode n;
  for (const std::string target : {"/kv/nope", "/get?key=nope", "/retrieve?key=nope"}) {
    CAPTURE(target);
    Reply r = n.http.Get(n.addr, target);
    CHECK_MESSAGE(r.status == 404, r);
    CHECK(IsJsonError(r));
  }
  Reply del = n.http.Send(n.addr, "DELETE", "/kv/nope");
  CHECK_MESSAGE(del.status == 404, del);
  CHECK(IsJsonError(del));
  Reply del2 = n.http.Get(n.addr, "/delete?key=nope");
  CHECK_MESSAGE(del2.status == 404, del2);
  CHECK(IsJsonError(del2));
}

TEST_CASE(
    "node: If-None-Match: * creates only; If-Match needs the current ETag; failures are 412") {
  SingleNode n;
  Reply created = n.http.Send(n.addr, "PUT", "/kv/c", "first", {{"If-None-Match", "*"}});
  REQUIRE_MESSAGE(Is2xx(created.status), created);
  std::string etag1 = created.Header("ETag");

  Reply exists = n.http.Send(n.addr, "PUT", "/kv/c", "second", {{"If-None-Match", "*"}});
  CHECK_MESSAGE(exists.status == 412, exists);
  CHECK(IsJsonError(exists));
  CHECK(n.http.Get(n.addr, "/kv/c").body == "first");

  Reply matched = n.http.Send(n.addr, "PUT", "/kv/c", "third", {{"If-Match", etag1}});
  CHECK_MESSAGE(Is2xx(matched.status), matched);
  std::string etag2 = matched.Header("ETag");
  CHECK(etag2 != etag1);

  Reply stale = n.http.Send(n.addr, "PUT", "/kv/c", "fourth", {{"If-Match", etag1}});
  CHECK_MESSAGE(stale.status == 412, stale);
  CHECK(IsJsonError(stale));
  Reply now = n.http.Get(n.addr, "/kv/c");
  CHECK(now.body == "third");
  CHECK(now.Header("ETag") == etag2);

  // If-Match on a key that does not exist fails: there is no current ETag.
  Reply absent = n.http.Send(n.addr, "PUT", "/kv/absent", "x", {{"If-Match", etag2}});
  CHECK_MESSAGE(absent.status == 412, absent);
  CHECK(n.http.Get(n.addr, "/kv/absent").status == 404);
}

TEST_CASE("node: DELETE honours If-Match") {
  SingleNode n;
  Reply put1 = n.http.Send(n.addr, "PUT", "/kv/d", "v1");
  Reply put2 = n.http.Send(n.addr, "PUT", "/kv/d", "v2");
  REQUIRE(Is2xx(put1.status));
  REQUIRE(Is2xx(put2.status));

  Reply stale = n.http.Send(n.addr, "DELETE", "/kv/d", "", {{"If-Match", put1.Header("ETag")}});
  CHECK_MESSAGE(stale.status == 412, stale);
  CHECK(IsJsonError(stale));
  CHECK(n.http.Get(n.addr, "/kv/d").body == "v2");

  Reply current = n.http.Send(n.addr, "DELETE", "/kv/d", "", {{"If-Match", put2.Header("ETag")}});
  CHECK_MESSAGE(current.status == 204, current);
  CHECK(n.http.Get(n.addr, "/kv/d").status == 404);
}

TEST_CASE("node: a method a route does not take is a 405 with Allow and a JSON error") {
  SingleNode n;
  struct Case {
    std::string method;
    std::string target;
  };
  for (Case c : {Case{"PATCH", "/kv/k"}, Case{"POST", "/health"}, Case{"DELETE", "/stats"},
                 Case{"PUT", "/cluster"}}) {
    CAPTURE(c.method);
    CAPTURE(c.target);
    Reply r = n.http.Send(n.addr, c.method, c.target, c.method == "GET" ? "" : "x");
    CHECK_MESSAGE(r.status == 405, r);
    CHECK(r.HasHeader("Allow"));
    CHECK(IsJsonError(r));
  }
  CHECK(n.http.Get(n.addr, "/kv/k").status == 404);  // the PATCH stored nothing
}

TEST_CASE("node: an unknown path is a 404 with a JSON error") {
  SingleNode n;
  for (const std::string target : {"/nope", "/kvx/a", "/admin/nope"}) {
    CAPTURE(target);
    Reply r = n.http.Get(n.addr, target);
    CHECK_MESSAGE(r.status == 404, r);
    CHECK(IsJsonError(r));
  }
}

TEST_CASE("node: values are bytes and round-trip exactly, empty and binary ones included") {
  SingleNode n;
  std::string binary;
  for (int round = 0; round < 4; ++round) {
    for (int c = 0; c < 256; ++c) binary.push_back(static_cast<char>(c));
  }
  REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", "/kv/bin", binary).status));
  Reply r = n.http.Get(n.addr, "/kv/bin");
  CHECK(r.status == 200);
  CHECK(r.body == binary);

  std::string large(1 << 20, 'L');  // 1 MiB, well under the 16 MiB default
  for (size_t i = 0; i < large.size(); i += 4096)
    large[i] = static_cast<char>('a' + (i / 4096) % 26);
  REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", "/kv/large", large).status));
  Reply l = n.http.Get(n.addr, "/kv/large");
  CHECK(l.status == 200);
  CHECK(l.body == large);

  REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", "/kv/empty", "").status));
  Reply e = n.http.Get(n.addr, "/kv/empty");
  CHECK_MESSAGE(e.status == 200, e);  // an empty value exists: it is not a 404
  CHECK(e.body.empty());
}

TEST_CASE("node: every answer names the shard in X-Distkv-Shard, errors included") {
  SingleNode n;
  std::vector<Reply> replies;
  replies.push_back(n.http.Get(n.addr, "/health"));
  replies.push_back(n.http.Send(n.addr, "PUT", "/kv/s", "v"));
  replies.push_back(n.http.Get(n.addr, "/kv/s"));
  replies.push_back(n.http.Get(n.addr, "/kv/missing"));      // 404
  replies.push_back(n.http.Get(n.addr, "/kv/bad%zz"));       // 400
  replies.push_back(n.http.Send(n.addr, "PATCH", "/kv/s"));  // 405
  replies.push_back(n.http.Get(n.addr, "/stats"));
  for (const Reply& r : replies) {
    CHECK_MESSAGE(r.Header("X-Distkv-Shard") == n.shard, r);
  }
}

TEST_CASE("node: error answers carry Content-Type application/json") {
  SingleNode n;
  for (const Reply& r : {n.http.Get(n.addr, "/kv/missing"), n.http.Get(n.addr, "/kv/bad%zz"),
                         n.http.Send(n.addr, "PATCH", "/kv/x")}) {
    CHECK_MESSAGE(r.Header("Content-Type").find("application/json") != std::string::npos, r);
    CHECK(IsJsonError(r));
  }
}

TEST_CASE("node: /health answers 200 and /stats reports role, shard, key count and last LSN") {
  SingleNode n;
  CHECK(n.http.Get(n.addr, "/health").status == 200);

  Json before = GetJson(n.http, n.addr, "/stats");
  CHECK(JsonInt(before, "keys") == 0);

  for (const std::string key : {"a", "b", "c"})
    REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", Kv(key), "v").status));
  REQUIRE(n.http.Send(n.addr, "DELETE", "/kv/a").status == 204);
  Reply last = n.http.Send(n.addr, "PUT", "/kv/d", "v");
  REQUIRE(Is2xx(last.status));
  uint64_t last_lsn = 0;
  REQUIRE(ParseEtag(last.Header("ETag"), &last_lsn));

  Json stats = GetJson(n.http, n.addr, "/stats");
  const Json* role = JsonField(stats, "role");
  const Json* shard = JsonField(stats, "shard");
  REQUIRE(role != nullptr);
  REQUIRE(shard != nullptr);
  CHECK(*role == "primary");
  CHECK(*shard == n.shard);
  CHECK(JsonInt(stats, "keys") == 3);  // b, c, d
  CHECK(JsonInt(stats, "last_lsn") == static_cast<int64_t>(last_lsn));
}

TEST_CASE("node: the seed flags --config-file, --db-location and --http-addr are accepted") {
  TempDir dir;
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  std::string config = dir.Sub("sharding.toml");
  WriteFile(config, spec.ToToml());
  // --http-addr overrides the shard's address from the config.
  std::string listen = "127.0.0.1:" + std::to_string(FreePorts(1)[0]);
  std::string data = dir.Sub("db");
  const std::string& shard = spec.shards[0].name;
  Node node(shard, shard, listen,
            {"serve", "--config-file", config, "--shard", shard, "--db-location", data,
             "--http-addr", listen},
            dir.Sub("node.log"));
  node.StartAndWait();

  SyncHttp http;
  REQUIRE(Is2xx(http.Send(listen, "PUT", "/kv/flag", "ok").status));
  CHECK(http.Get(listen, "/kv/flag").body == "ok");
  // The data went where --db-location said.
  std::error_code ec;
  CHECK(std::filesystem::is_directory(data, ec));
  CHECK_FALSE(std::filesystem::is_empty(data, ec));
  CHECK(node.Stop() == 0);
}

TEST_CASE(
    "node: a bad config or an unknown shard is refused at start, naming the file, line and field") {
  TempDir dir;
  ClusterSpec spec = LocalCluster(1);
  const std::string& shard = spec.shards[0].name;

  // A config whose fsync value is wrong, on a line we know.
  std::string toml = spec.ToToml();
  toml += "\n[storage]\n";
  size_t line = static_cast<size_t>(std::count(toml.begin(), toml.end(), '\n')) + 1;
  toml += "fsync = \"sometimes\"\n";
  std::string config = dir.Sub("bad.toml");
  WriteFile(config, toml);
  Node bad(shard, shard, spec.shards[0].address,
           {"serve", "--config", config, "--shard", shard, "--data", dir.Sub("d1")},
           dir.Sub("bad.log"));
  bad.Start();
  int code = bad.WaitForExit(10'000);
  CHECK_MESSAGE(code > 0, "exit code " << code << " for a bad config");
  std::string log = bad.LogTail();
  CHECK_MESSAGE(log.find(config) != std::string::npos, log);
  CHECK_MESSAGE(log.find("fsync") != std::string::npos, log);
  CHECK_MESSAGE((log.find(":" + std::to_string(line)) != std::string::npos ||
                 log.find("line " + std::to_string(line)) != std::string::npos),
                "line " << line << " not named: " << log);

  // A shard the config does not have.
  std::string good = dir.Sub("good.toml");
  WriteFile(good, spec.ToToml());
  Node unknown("Atlantis", "Atlantis", spec.shards[0].address,
               {"serve", "--config", good, "--shard", "Atlantis", "--data", dir.Sub("d2")},
               dir.Sub("unknown.log"));
  unknown.Start();
  int code2 = unknown.WaitForExit(10'000);
  CHECK_MESSAGE(code2 > 0, "exit code " << code2 << " for an unknown shard");
  CHECK_MESSAGE(unknown.LogTail().find("Atlantis") != std::string::npos, unknown.LogTail());
}

TEST_CASE("node: the seed API takes body-less POSTs, as `curl -X POST` sends them") {
  SingleNode n;
  // No Content-Length and no Transfer-Encoding: per RFC 9112 the body is empty.
  RawConnection conn;
  REQUIRE(conn.Connect(n.addr));
  conn.Exchange("POST /set?key=curl&value=posted HTTP/1.1\r\nHost: test\r\n\r\n", 1, 5'000);
  REQUIRE_MESSAGE(conn.responses().size() == 1, "no answer; " << conn.error());
  CHECK_MESSAGE(Is2xx(conn.responses()[0].status),
                "HTTP " << conn.responses()[0].status << " " << conn.responses()[0].body);
  CHECK(n.http.Get(n.addr, "/kv/curl").body == "posted");

  RawConnection del;
  REQUIRE(del.Connect(n.addr));
  del.Exchange("POST /delete?key=curl HTTP/1.1\r\nHost: test\r\n\r\n", 1, 5'000);
  REQUIRE(del.responses().size() == 1);
  CHECK_MESSAGE(del.responses()[0].status == 204,
                "HTTP " << del.responses()[0].status << " " << del.responses()[0].body);
  CHECK(n.http.Get(n.addr, "/kv/curl").status == 404);
}

TEST_CASE("node: a chunked PUT body is stored de-chunked") {
  SingleNode n;
  RawConnection conn;
  REQUIRE(conn.Connect(n.addr));
  conn.Exchange(
      "PUT /kv/chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1\r\n \r\nA\r\nchunked!!!\r\n0\r\n\r\n",
      1, 5'000);
  REQUIRE_MESSAGE(conn.responses().size() == 1, "no answer; " << conn.error());
  CHECK(Is2xx(conn.responses()[0].status));
  CHECK(n.http.Get(n.addr, "/kv/chunked").body == "hello chunked!!!");
}

TEST_CASE("node: HTTP/1.0 and Connection: close get their answer, then the connection closes") {
  SingleNode n;
  RawConnection old;
  REQUIRE(old.Connect(n.addr));
  old.Exchange("GET /health HTTP/1.0\r\n\r\n", 1, 5'000);
  REQUIRE(old.responses().size() == 1);
  CHECK(old.responses()[0].status == 200);
  CHECK(old.WaitForClose(5'000));

  RawConnection closing;
  REQUIRE(closing.Connect(n.addr));
  closing.Exchange("GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", 1, 5'000);
  REQUIRE(closing.responses().size() == 1);
  CHECK(closing.responses()[0].status == 200);
  CHECK(closing.WaitForClose(5'000));

  // HTTP/1.0 with keep-alive asked for stays open.
  RawConnection kept;
  REQUIRE(kept.Connect(n.addr));
  kept.Exchange(
      "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /health HTTP/1.0\r\nConnection: "
      "keep-alive\r\n\r\n",
      2, 5'000);
  CHECK(kept.responses().size() == 2);
  CHECK_FALSE(kept.peer_closed());
}

TEST_CASE("node: /metrics is Prometheus text with the figures of /stats") {
  SingleNode n;
  for (const std::string key : {"m1", "m2", "m3"})
    REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", Kv(key), "v").status));
  Reply r = n.http.Get(n.addr, "/metrics");
  REQUIRE_MESSAGE(r.status == 200, r);
  CHECK(r.Header("Content-Type").find("text/plain") == 0);
  // Every line is a HELP, a TYPE or a sample, by a strict reader.
  std::vector<testing::PromSample> samples;
  std::string error;
  REQUIRE_MESSAGE(testing::ParsePromText(r.body, &samples, &error), error);
  CHECK(samples.size() > 0);
  Json stats = GetJson(n.http, n.addr, "/stats");
  CHECK(r.body.find("\ndistkv_keys " + std::to_string(JsonInt(stats, "keys")) + "\n") !=
        std::string::npos);
  // The group commit's counters (no write ran between the two requests).
  const Json* commit = JsonField(stats, "commit");
  REQUIRE(commit != nullptr);
  for (const auto& [metric, field] : std::vector<std::pair<std::string, std::string>>{
           {"distkv_fsync_batches_total", "batches"},
           {"distkv_fsync_lingered_total", "lingered"},
           {"distkv_fsync_linger_timeouts_total", "linger_timeouts"},
           {"distkv_fsync_linger_microseconds_total", "linger_us"}}) {
    CHECK_MESSAGE(r.body.find("\n" + metric + " " + std::to_string(JsonInt(*commit, field)) +
                              "\n") != std::string::npos,
                  metric);
  }
}

TEST_CASE("node: a second process on the same data directory is refused; the first keeps serving") {
  SingleNode n;
  REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", "/kv/mine", "first").status));
  TempDir dir;
  std::string config = dir.Sub("sharding.toml");
  WriteFile(config, n.cluster.spec().ToToml());
  std::string other = "127.0.0.1:" + std::to_string(FreePorts(1)[0]);
  Node second("second", n.shard, other,
              {"serve", "--config", config, "--shard", n.shard, "--data",
               n.cluster.dir().Sub("data-" + n.shard), "--listen", other},
              dir.Sub("second.log"));
  second.Start();
  int code = second.WaitForExit(10'000);
  CHECK_MESSAGE(code > 0, "exit code " << code << "; log:\n" << second.LogTail());
  CHECK(n.http.Get(n.addr, "/kv/mine").body == "first");
  CHECK(Is2xx(n.http.Send(n.addr, "PUT", "/kv/mine", "still").status));
}

}  // namespace
}  // namespace distkv::clustertest
