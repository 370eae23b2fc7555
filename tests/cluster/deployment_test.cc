// Real deployments: addresses by host name and IPv6 in sharding.toml, the
// seed projects' command line (no `serve`), and --advertise for a node that
// listens on a wildcard address but is known by its config address.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

TEST_CASE("deployment: host names, IPv6, the seeds' command line and --advertise") {
  TempDir dir;
  const std::vector<int> ports = FreePorts(3);
  const std::string delhi = "localhost:" + std::to_string(ports[0]);
  const std::string delhi_replica = "localhost:" + std::to_string(ports[1]);
  const std::string mumbai = "[::1]:" + std::to_string(ports[2]);
  const std::string config = dir.Sub("sharding.toml");
  WriteFile(config, "[[shards]]\nname = \"Delhi\"\nidx = 0\naddress = \"" + delhi +
                        "\"\nreplicas = [\"" + delhi_replica +
                        "\"]\n\n[[shards]]\nname = \"Mumbai\"\nidx = 1\naddress = \"" + mumbai +
                        "\"\n");
  const std::string bin = DistkvBinary();
  auto loopback = [](int port) { return "127.0.0.1:" + std::to_string(port); };

  // Its own address is localhost:port: listened on as given, no --listen.
  Node d("delhi", "Delhi", loopback(ports[0]),
         {"serve", "--config", config, "--shard", "Delhi", "--data", dir.Sub("delhi")},
         dir.Sub("delhi.log"));
  // The seeds' form: flags only. It listens on every address (IPv4 too) and
  // is known to the others by its config address, [::1]:port.
  Node m("mumbai", "Mumbai", loopback(ports[2]),
         {"--db-location=" + dir.Sub("mumbai"), "--http-addr=[::]:" + std::to_string(ports[2]),
          "--config-file=" + config, "--shard=Mumbai", "--advertise", mumbai},
         dir.Sub("mumbai.log"));
  d.StartAndWait();
  m.StartAndWait();

  // A replica on a wildcard address without --advertise cannot say which
  // configured replica it is: refused at start, with the flag named.
  const std::vector<std::string> replica_args = {"serve",    "--config",
                                                 config,     "--shard",
                                                 "Delhi",    "--replica",
                                                 "--data",   dir.Sub("replica"),
                                                 "--listen", "0.0.0.0:" + std::to_string(ports[1])};
  {
    Node lost("lost-replica", "Delhi", loopback(ports[1]), replica_args, dir.Sub("lost.log"));
    lost.Start();
    CHECK(lost.WaitForExit(10'000) == 1);
    CHECK(lost.LogTail().find("--advertise") != std::string::npos);
  }
  std::vector<std::string> advertised = replica_args;
  advertised.insert(advertised.end(), {"--advertise", delhi_replica});
  Node r("replica", "Delhi", loopback(ports[1]), advertised, dir.Sub("replica.log"));
  r.StartAndWait();

  // Every key through either node: forwarding reaches localhost and [::1].
  SyncHttp http;
  for (int i = 0; i < 20; ++i) {
    const std::string key = "k" + std::to_string(i);
    Reply put = http.Send(i % 2 ? delhi : loopback(ports[2]), "PUT", "/kv/" + key, "v" + key);
    CHECK_MESSAGE(put.status == 201, key, " ", put.body);
  }
  for (int i = 0; i < 20; ++i) {
    const std::string key = "k" + std::to_string(i);
    Reply get = http.Get(i % 2 ? loopback(ports[2]) : delhi, "/kv/" + key);
    CHECK_MESSAGE(get.status == 200, key);
    CHECK(get.body == "v" + key);
  }

  // The replica is accepted under its config name and catches up.
  const int64_t durable = JsonInt(GetJson(http, delhi, "/stats"), "durable_lsn");
  CHECK(durable > 0);
  REQUIRE(WaitUntil(
      [&] {
        return JsonInt(GetJson(http, loopback(ports[1]), "/stats"), "durable_lsn") == durable;
      },
      10'000));
  CHECK(JsonText(GetJson(http, loopback(ports[1]), "/stats"), "address") == delhi_replica);
}

}  // namespace
}  // namespace distkv::clustertest
