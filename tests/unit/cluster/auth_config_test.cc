// [auth] in sharding.toml: the secret and tokens inline or from files closed
// to others, roles, and refusals that never quote a secret.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <doctest/doctest.h>

#include "src/cluster/config.h"

using distkv::ClusterConfig;
using distkv::ParseConfig;
using distkv::Role;

namespace {

const char* kShard = R"(
[[shards]]
name = "Delhi"
idx = 0
address = "127.0.0.2:8080"
)";

const std::string kSecret = "s3cret-s3cret-s3cret";

bool Parse(const std::string& auth, ClusterConfig* c, std::string* error) {
  return ParseConfig("[auth]\n" + auth + kShard, "test.toml", c, error);
}

std::string ErrorOf(const std::string& auth) {
  ClusterConfig c;
  std::string error;
  CHECK_FALSE(Parse(auth, &c, &error));
  return error;
}

// A temporary directory with files of a given mode.
struct Dir {
  Dir() {
    char tmpl[] = "/tmp/distkv-auth-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~Dir() { std::system(("rm -rf " + path).c_str()); }
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    const std::string p = path + "/" + name;
    std::ofstream(p) << text;
    chmod(p.c_str(), mode);
    return p;
  }
  std::string path;
};

}  // namespace

TEST_CASE("auth is off without [auth]; status pages default to the read role") {
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(ParseConfig(kShard, "test.toml", &c, &error), error);
  CHECK_FALSE(c.auth.enabled);
  CHECK(c.auth.status_role == Role::kRead);
}

TEST_CASE("[auth] reads the secret, the tokens with their roles and status_role") {
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(
      Parse("cluster_secret = \"" + kSecret +
                "\"\nstatus_role = \"none\"\ntokens = [ { token = \"aaaaaaaaaaaaaaaa1\", "
                "role = \"read\" }, { token = \"bbbbbbbbbbbbbbbb2\", role = \"admin\" } ]\n",
            &c, &error),
      error);
  CHECK(c.auth.enabled);
  CHECK(c.auth.cluster_secret == kSecret);
  CHECK(c.auth.status_role == Role::kNone);
  REQUIRE(c.auth.tokens.size() == 2);
  CHECK(c.auth.tokens[0].first == "aaaaaaaaaaaaaaaa1");
  CHECK(c.auth.tokens[0].second == Role::kRead);
  CHECK(c.auth.tokens[1].second == Role::kAdmin);
}

TEST_CASE("[auth] reads cluster_secret_file and tokens_file, relative to the config") {
  Dir d;
  d.Write("secret", kSecret + "\n", 0600);
  d.Write("tokens.toml", "tokens = [ { token = \"wwwwwwwwwwwwwwww\", role = \"write\" } ]\n", 0600);
  const std::string config = d.Write("sharding.toml",
                                     "[auth]\ncluster_secret_file = \"secret\"\ntokens_file = "
                                     "\"tokens.toml\"\n" +
                                         std::string(kShard),
                                     0644);
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(distkv::LoadConfig(config, &c, &error), error);
  CHECK(c.auth.cluster_secret == kSecret);  // the trailing newline is not part of it
  REQUIRE(c.auth.tokens.size() == 1);
  CHECK(c.auth.tokens[0].second == Role::kWrite);

  // A secret file others may read is refused, as ssh refuses such keys.
  chmod((d.path + "/secret").c_str(), 0644);
  CHECK_FALSE(distkv::LoadConfig(config, &c, &error));
  CHECK(error.find("auth.cluster_secret_file") != std::string::npos);
  CHECK(error.find("chmod 600") != std::string::npos);
}

TEST_CASE("[auth] mistakes are refused, naming the field but never the secret") {
  CHECK(ErrorOf("tokens = []\n").find("auth.cluster_secret: is required") != std::string::npos);
  CHECK(ErrorOf("cluster_secret = \"short\"\n").find("at least 16 bytes") != std::string::npos);
  const std::string bad_role = ErrorOf("cluster_secret = \"" + kSecret +
                                       "\"\ntokens = [ { token = \"tttttttttttttttttt\", role = "
                                       "\"root\" } ]\n");
  CHECK(bad_role.find("auth.tokens[0].role") != std::string::npos);
  const std::string short_token =
      ErrorOf("cluster_secret = \"" + kSecret +
              "\"\ntokens = [ { token = \"tiny-token\", role = \"read\" } ]\n");
  CHECK(short_token.find("auth.tokens[0].token") != std::string::npos);
  CHECK(short_token.find("tiny-token") == std::string::npos);
  const std::string twice =
      ErrorOf("cluster_secret = \"" + kSecret +
              "\"\ntokens = [ { token = \"tttttttttttttttttt\", role = \"read\" }, { token = "
              "\"tttttttttttttttttt\", role = \"admin\" } ]\n");
  CHECK(twice.find("auth.tokens[1].token: is listed twice") != std::string::npos);
  CHECK(twice.find("tttttttttttttttttt") == std::string::npos);
  const std::string same = ErrorOf("cluster_secret = \"" + kSecret + "\"\ntokens = [ { token = \"" +
                                   kSecret + "\", role = \"read\" } ]\n");
  CHECK(same.find("differ from the cluster secret") != std::string::npos);
  CHECK(same.find(kSecret) == std::string::npos);
  CHECK(ErrorOf("cluster_secret = \"" + kSecret + "\"\nstatus_role = \"node\"\n")
            .find("auth.status_role") != std::string::npos);
}
