// SlotMap: reads the node's /cluster document, routes keys with the same
// slot function as the nodes, keeps the epoch, and refuses broken maps.
#include <doctest/doctest.h>

#include <string>

#include "src/client/slot_map.h"
#include "src/common/key_slot.h"

using namespace distkv;
using namespace distkv::client;

namespace {
const char* kTwoShards = R"({"slots":16384,"epoch":7,"self":{"shard":"A"},"shards":[
  {"name":"A","idx":0,"slots":[[0,8191]],"primary":{"address":"10.0.0.1:80","reachable":true},
   "replicas":[{"address":"10.0.0.11:80","reachable":false}]},
  {"name":"B","idx":1,"slots":[[8192,16383]],"primary":{"address":"10.0.0.2:80","reachable":true},
   "replicas":[]}]})";
}

TEST_CASE("SlotMap parses /cluster and routes every key to the owner of its slot") {
  SlotMap map;
  std::string error;
  REQUIRE(map.Parse(kTwoShards, &error));
  CHECK(map.epoch() == 7);
  REQUIRE(map.shards().size() == 2);
  CHECK(map.shards()[0].primary == "10.0.0.1:80");
  CHECK(map.shards()[0].replicas == std::vector<std::string>{"10.0.0.11:80"});
  int counted[2] = {0, 0};
  for (int i = 0; i < 1000; ++i) {
    const std::string key = "k" + std::to_string(i);
    const size_t owner = map.OwnerOfKey(key);
    CHECK(owner == (KeySlot(key) < 8192 ? 0u : 1u));
    counted[owner]++;
  }
  CHECK(counted[0] > 400);
  CHECK(counted[1] > 400);
  CHECK(map.AllNodes() == std::vector<std::string>{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.11:80"});
}

TEST_CASE("SlotMap refuses maps with holes, bad ranges or the wrong shape") {
  SlotMap map;
  std::string error;
  CHECK_FALSE(map.Parse("not json", &error));
  CHECK_FALSE(map.Parse(R"({"shards":[]})", &error));
  CHECK_FALSE(map.Parse(
      R"({"shards":[{"name":"A","slots":[[0,100]],"primary":{"address":"h:1"}}]})", &error));
  CHECK(error.find("slot 101") != std::string::npos);
  CHECK_FALSE(map.Parse(R"({"shards":[{"name":"A","slots":[[5,1]],"primary":{"address":"h:1"}}]})",
                        &error));
  CHECK_FALSE(map.Parse(R"({"shards":[{"name":"A","slots":[[0,16383]]}]})", &error));
  CHECK(map.empty());  // a failed parse leaves the map as it was
}
