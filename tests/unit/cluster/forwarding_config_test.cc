// The forwarding settings of sharding.toml: the per-peer connection cap, and
// the replica ack timeout, which must stay below the forward timeout so that
// a forwarded write reports the replica timeout itself.
#include <doctest/doctest.h>

#include "src/cluster/config.h"

using distkv::ClusterConfig;
using distkv::ParseConfig;

namespace {

const char* kShards = R"(
[[shards]]
name = "Delhi"
idx = 0
address = "127.0.0.2:8080"
replicas = ["127.0.0.22:8080"]
)";

bool Parse(const std::string& text, ClusterConfig* c, std::string* error) {
  return ParseConfig(text + kShards, "test.toml", c, error);
}

}  // namespace

TEST_CASE("defaults: ack_timeout_ms is below forward_timeout_ms; 64 connections per peer") {
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(Parse("", &c, &error), error);
  CHECK(c.forward_timeout_ms == 2000);
  CHECK(c.ack_timeout_ms == 1500);
  CHECK(c.forward_max_connections == 64);
  CHECK(ClusterConfig{}.ack_timeout_ms < ClusterConfig{}.forward_timeout_ms);
}

TEST_CASE("an unset ack_timeout_ms follows forward_timeout_ms (3/4 of it)") {
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(Parse("[cluster]\nforward_timeout_ms = 1000\n", &c, &error), error);
  CHECK(c.ack_timeout_ms == 750);
}

TEST_CASE("forward_max_connections is read and must be at least 1") {
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(Parse("[cluster]\nforward_max_connections = 8\n", &c, &error), error);
  CHECK(c.forward_max_connections == 8);
  CHECK_FALSE(Parse("[cluster]\nforward_max_connections = 0\n", &c, &error));
  CHECK_MESSAGE(error.find("test.toml:2: cluster.forward_max_connections") == 0, error);
}

TEST_CASE("an ack_timeout_ms at or above forward_timeout_ms is refused, naming both") {
  for (const char* ack : {"2000", "5000"}) {
    CAPTURE(ack);
    ClusterConfig c;
    std::string error;
    CHECK_FALSE(Parse(std::string("[replication]\nack_timeout_ms = ") + ack + "\n", &c, &error));
    CHECK_MESSAGE(error.find("test.toml:2: replication.ack_timeout_ms") == 0, error);
    CHECK_MESSAGE(error.find("forward_timeout_ms (2000)") != std::string::npos, error);
  }
  ClusterConfig c;
  std::string error;
  CHECK_MESSAGE(
      Parse("[cluster]\nforward_timeout_ms = 6000\n[replication]\nack_timeout_ms = 5000\n", &c,
            &error),
      error);
  CHECK(c.ack_timeout_ms == 5000);
}
