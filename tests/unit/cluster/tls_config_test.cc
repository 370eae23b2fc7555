// [tls] in sharding.toml: cert, key and ca required together, paths taken
// relative to the config's directory, verify_clients optional.
#include <doctest/doctest.h>

#include "src/cluster/config.h"

using distkv::ClusterConfig;
using distkv::ParseConfig;

namespace {
const char* kShard = "\n[[shards]]\nname = \"Delhi\"\nidx = 0\naddress = \"127.0.0.2:8080\"\n";
}  // namespace

TEST_CASE("[tls] is off by default and reads cert, key, ca and verify_clients") {
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(ParseConfig(kShard, "conf/sharding.toml", &c, &error), error);
  CHECK_FALSE(c.tls);
  REQUIRE_MESSAGE(ParseConfig("[tls]\ncert = \"n.crt\"\nkey = \"/abs/n.key\"\nca = \"ca.crt\"\n"
                              "verify_clients = true\n" +
                                  std::string(kShard),
                              "conf/sharding.toml", &c, &error),
                  error);
  CHECK(c.tls);
  CHECK(c.tls_files.cert == "conf/n.crt");  // relative to the config's directory
  CHECK(c.tls_files.key == "/abs/n.key");
  CHECK(c.tls_files.ca == "conf/ca.crt");
  CHECK(c.tls_verify_clients);
}

TEST_CASE("[tls] without one of its files, or with an unknown key, is refused") {
  ClusterConfig c;
  std::string error;
  CHECK_FALSE(ParseConfig("[tls]\ncert = \"n.crt\"\nkey = \"n.key\"\n" + std::string(kShard),
                          "s.toml", &c, &error));
  CHECK(error.find("tls.ca: is required") != std::string::npos);
  CHECK_FALSE(ParseConfig(
      "[tls]\ncert = \"a\"\nkey = \"b\"\nca = \"c\"\nverify_client = true\n" + std::string(kShard),
      "s.toml", &c, &error));
  CHECK(error.find("tls.verify_client: unknown key") != std::string::npos);
}
