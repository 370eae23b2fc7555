// /metrics and the JSON pages stay well-formed whatever names and keys
// callers send: a replica name is the one label value that came from a
// request (acks and streams name their replica), and keys and names reach
// /stats through events and errors.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"
#include "tests/common/prometheus_text.h"

namespace distkv::clustertest {
namespace {

TEST_CASE("metrics: hostile replica names and keys leave /metrics and /stats well-formed") {
  TestCluster cluster(LocalCluster(1, 1));
  cluster.primary(0).StartAndWait();  // the configured replica need not run
  const std::string node = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http;

  const std::vector<std::string> hostile = {
      "evil\"} 1\ndistkv_fake 9\n# TYPE distkv_fake gauge",  // would end a label and a line
      "back\\slash\\",                                       // a trailing escape
      std::string("\xff\xfe\xc3 not utf-8"),                 // not UTF-8
      std::string("nul\0byte", 8),
  };
  const std::string history = JsonText(GetJson(http, node, "/stats"), "history_id");
  for (const std::string& name : hostile) {
    CAPTURE(name);
    Reply ack = http.Send(
        node, "POST",
        "/internal/replica-ack?replica=" + PercentEncode(name) + "&lsn=1&history=" + history);
    CHECK_MESSAGE(ack.status == 403, ack);
    CHECK(IsJsonError(ack));
    Reply stream = http.Get(node, "/internal/replicate?from=0&replica=" + PercentEncode(name) +
                                      "&shard=" + cluster.primary(0).shard());
    CHECK_MESSAGE(stream.status == 403, stream);
    CHECK(IsJsonError(stream));
    // The same bytes as a key: stored and read back, and never a label.
    Reply put = http.Send(node, "PUT", "/kv/" + PercentEncode(name), name);
    CHECK_MESSAGE(put.status == 201, put);
    CHECK(http.Get(node, "/kv/" + PercentEncode(name)).body == name);
  }

  Reply metrics = http.Get(node, "/metrics");
  REQUIRE(metrics.status == 200);
  std::vector<testing::PromSample> samples;
  std::string error;
  REQUIRE_MESSAGE(testing::ParsePromText(metrics.body, &samples, &error), error);
  std::set<std::string> replicas;
  for (const testing::PromSample& s : samples) {
    CHECK(s.name.starts_with("distkv_"));
    CHECK(s.name != "distkv_fake");
    for (const auto& [label, value] : s.labels) {
      if (label == "replica") replicas.insert(value);
    }
  }
  // Only the configured replica is a label value, so no name above got in.
  CHECK(replicas == std::set<std::string>{replica});

  // The JSON pages parse strictly (ParseJson refuses invalid UTF-8).
  for (const char* page : {"/stats", "/cluster", "/cluster/status"}) {
    Reply r = http.Get(node, page);
    CAPTURE(page);
    REQUIRE(r.status == 200);
    Json parsed;
    std::string why;
    CHECK_MESSAGE(ParseJson(r.body, &parsed, &why), why);
  }
}

}  // namespace
}  // namespace distkv::clustertest
