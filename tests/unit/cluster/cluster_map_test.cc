#include "src/cluster/cluster_map.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace distkv {
namespace {

ClusterMap TwoShards() {
  ClusterConfig config;
  std::string error;
  REQUIRE(ParseConfig(R"(
[[shards]]
name = "Delhi"
idx = 0
address = "127.0.0.2:8080"
replicas = ["127.0.0.22:8080", "127.0.0.23:8080"]
[[shards]]
name = "Mumbai"
idx = 1
address = "127.0.0.3:8080"
)",
                      "test.toml", &config, &error));
  return ClusterMap{0, config.shards, {}};
}

}  // namespace

TEST_CASE("cluster map: encode then decode gives the same map, slots explicit") {
  ClusterMap map = TwoShards();
  map.epoch = 41;
  ClusterMap back;
  std::string error;
  REQUIRE_MESSAGE(DecodeClusterMap(EncodeClusterMap(map), "wire", &back, &error), error);
  CHECK(back.epoch == 41);
  REQUIRE(back.shards.size() == 2);
  CHECK(back.shards[0].name == "Delhi");
  CHECK(back.shards[0].replicas == map.shards[0].replicas);
  CHECK(back.shards[1].slots.size() == 1);
  CHECK(back.shards[1].slots[0].first == 8192);
  CHECK(back.shards[1].slots[0].last == 16383);
}

TEST_CASE("cluster map: names with quotes and backslashes survive the text form") {
  ClusterMap map = TwoShards();
  map.shards[1].name = "Mum\"bai\\";
  ClusterMap back;
  std::string error;
  REQUIRE_MESSAGE(DecodeClusterMap(EncodeClusterMap(map), "wire", &back, &error), error);
  CHECK(back.shards[1].name == "Mum\"bai\\");
}

TEST_CASE("cluster map: a bad epoch line or an invalid map is refused with the source named") {
  ClusterMap map;
  std::string error;
  CHECK_FALSE(DecodeClusterMap("epoch = -1\n", "peer", &map, &error));
  CHECK(error.find("peer:1") != std::string::npos);
  CHECK_FALSE(DecodeClusterMap("epoch = 99999999999999999999\n", "peer", &map, &error));
  CHECK_FALSE(DecodeClusterMap("epoch = 18446744073709551616\n", "peer", &map, &error));
  CHECK_FALSE(DecodeClusterMap("epoch = 7x\n", "peer", &map, &error));
  CHECK_FALSE(DecodeClusterMap("epoch = \n", "peer", &map, &error));
  CHECK_FALSE(DecodeClusterMap("[[shards]]\n", "peer", &map, &error));
  // Every slot must still be owned exactly once.
  std::string text = EncodeClusterMap(TwoShards());
  text.replace(text.find("[[8192, 16383]]"), 15, "[[8192, 16000]]");
  CHECK_FALSE(DecodeClusterMap(text, "peer", &map, &error));
  CHECK(error.find("has no owner") != std::string::npos);
  // A map that is not UTF-8 never reaches the TOML parser (config_fuzz's
  // "'\xff'" made it read past its buffer), wherever the bad byte is.
  CHECK_FALSE(DecodeClusterMap("epoch = 3\n'\xff'", "peer", &map, &error));
  CHECK_MESSAGE(error.find("peer:2: is not valid UTF-8") != std::string::npos, error);
  text = EncodeClusterMap(TwoShards());
  text.insert(text.rfind('"'), "\xc3");
  CHECK_FALSE(DecodeClusterMap(text, "peer", &map, &error));
  CHECK_MESSAGE(error.find("is not valid UTF-8") != std::string::npos, error);
}

TEST_CASE("cluster map: promotion swaps the replica and the primary under epoch + 1") {
  ClusterMap map = TwoShards();
  map.epoch = 3;
  ClusterMap next;
  std::string error;
  REQUIRE(PromotedMap(map, "Delhi", "127.0.0.23:8080", &next, &error));
  CHECK(next.epoch == 4);
  CHECK(next.shards[0].address == "127.0.0.23:8080");
  CHECK(next.shards[0].replicas == std::vector<std::string>{"127.0.0.22:8080", "127.0.0.2:8080"});
  CHECK(next.shards[1].address == map.shards[1].address);
  CHECK_FALSE(PromotedMap(map, "Delhi", "127.0.0.3:8080", &next, &error));
  CHECK_FALSE(PromotedMap(map, "Chennai", "127.0.0.22:8080", &next, &error));

  size_t shard = 9;
  bool primary = false;
  REQUIRE(FindNode(next, "127.0.0.2:8080", &shard, &primary));
  CHECK(shard == 0);
  CHECK_FALSE(primary);
  CHECK_FALSE(FindNode(next, "127.0.0.99:8080", &shard, &primary));
}

TEST_CASE("cluster map: saved to a directory and loaded back; none is not an error") {
  char tmpl[] = "/tmp/distkv-map-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  ClusterMap map;
  std::string error;
  CHECK_FALSE(LoadClusterMap(dir, &map, &error));
  CHECK(error.empty());
  ClusterMap saved = TwoShards();
  saved.epoch = 7;
  REQUIRE_MESSAGE(SaveClusterMap(dir, saved, &error), error);
  REQUIRE(LoadClusterMap(dir, &map, &error));
  CHECK(map.epoch == 7);
  std::ofstream(dir + "/" + kClusterMapFile) << "epoch = 8\n[[shards]]\nname = 3\n";
  CHECK_FALSE(LoadClusterMap(dir, &map, &error));
  CHECK_FALSE(error.empty());
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace distkv
