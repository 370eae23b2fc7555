#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench/options.h"

namespace distkv::bench {

namespace {

ParseResult Parse(std::vector<std::string> args, BenchOptions* o, std::string* error) {
  args.insert(args.begin(), "distkv-bench");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseBenchFlags(static_cast<int>(argv.size()), argv.data(), o, error);
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/distkv-bench-test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

}  // namespace

TEST_CASE("defaults need only targets") {
  BenchOptions o;
  std::string error;
  REQUIRE(Parse({"--targets", "127.0.0.1:8080"}, &o, &error) == ParseResult::kOk);
  CHECK(o.targets == std::vector<std::string>{"127.0.0.1:8080"});
  CHECK(o.connections == 50);
  CHECK(o.duration_s == 10);
  CHECK(o.requests == 0);
  CHECK(o.get_weight == 90);
  CHECK(o.put_weight == 10);
  CHECK(o.pipeline == 1);
  CHECK(o.api == Api::kKv);
  CHECK(o.rate == 0);
  CHECK_FALSE(o.verify);
  CHECK(o.command_line == "distkv-bench --targets 127.0.0.1:8080");
}

TEST_CASE("every flag is parsed, in both --flag value and --flag=value forms") {
  BenchOptions o;
  std::string error;
  REQUIRE(Parse({"--targets=127.0.0.2:8080,[::1]:9000",
                 "--connections",
                 "8",
                 "--requests=1000",
                 "--ratio",
                 "50:50",
                 "--keys",
                 "1000",
                 "--value-bytes",
                 "64",
                 "--distribution",
                 "zipf",
                 "--zipf-theta",
                 "0.8",
                 "--pipeline",
                 "4",
                 "--api",
                 "seed",
                 "--preload",
                 "--verify",
                 "--rate",
                 "2500.5",
                 "--json",
                 "out.json",
                 "--timeout-ms",
                 "250",
                 "--seed",
                 "42",
                 "--key-prefix",
                 "k/",
                 "--no-progress"},
                &o, &error) == ParseResult::kOk);
  CHECK(o.targets == std::vector<std::string>{"127.0.0.2:8080", "[::1]:9000"});
  CHECK(o.connections == 8);
  CHECK(o.requests == 1000);
  CHECK(o.duration_s == 0);
  CHECK(o.get_weight == 50);
  CHECK(o.put_weight == 50);
  CHECK(o.keys == 1000);
  CHECK(o.value_bytes == 64);
  CHECK(o.distribution == Distribution::kZipf);
  CHECK(o.zipf_theta == doctest::Approx(0.8));
  CHECK(o.pipeline == 4);
  CHECK(o.api == Api::kSeed);
  CHECK(o.preload);
  CHECK(o.verify);
  CHECK(o.rate == doctest::Approx(2500.5));
  CHECK(o.json_path == "out.json");
  CHECK(o.timeout_ms == 250);
  CHECK(o.seed == 42);
  CHECK(o.key_prefix == "k/");
  CHECK_FALSE(o.progress);
}

TEST_CASE("bad flags are refused with a reason") {
  const std::vector<std::vector<std::string>> bad = {
      {},                          // no targets
      {"--targets", "127.0.0.1"},  // no port
      {"--targets", ""},
      {"--targets", "127.0.0.1:1", "--connections", "0"},
      {"--targets", "127.0.0.1:1", "--connections", "ten"},
      {"--targets", "127.0.0.1:1", "--duration", "-1"},
      {"--targets", "127.0.0.1:1", "--duration", "5", "--requests", "10"},
      {"--targets", "127.0.0.1:1", "--requests", "0"},
      {"--targets", "127.0.0.1:1", "--ratio", "90"},
      {"--targets", "127.0.0.1:1", "--ratio", "0:0"},
      {"--targets", "127.0.0.1:1", "--ratio", "a:b"},
      {"--targets", "127.0.0.1:1", "--distribution", "normal"},
      {"--targets", "127.0.0.1:1", "--zipf-theta", "1.5"},
      {"--targets", "127.0.0.1:1", "--api", "grpc"},
      {"--targets", "127.0.0.1:1", "--pipeline", "0"},
      {"--targets", "127.0.0.1:1", "--rate", "0"},
      {"--targets", "127.0.0.1:1", "--timeout-ms", "0"},
      {"--targets", "127.0.0.1:1", "--verify", "--value-bytes", "16"},
      {"--targets", "127.0.0.1:1", "--verify=yes"},
      {"--targets", "127.0.0.1:1", "--keys"},  // missing value
      {"--targets", "127.0.0.1:1", "--bogus", "1"},
      {"--targets", "127.0.0.1:1", "stray"},
      {"--targets", "127.0.0.1:1", "--config", "x.toml"},  // both
      {"--config", "/nonexistent/sharding.toml"},
  };
  for (const auto& args : bad) {
    BenchOptions o;
    std::string error;
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    CAPTURE(joined);
    CHECK(Parse(args, &o, &error) == ParseResult::kError);
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("--help asks for the usage text") {
  BenchOptions o;
  std::string error;
  CHECK(Parse({"--help"}, &o, &error) == ParseResult::kHelp);
  CHECK(std::string(BenchUsage()).find("--verify") != std::string::npos);
}

TEST_CASE("--config takes the shard primaries as targets") {
  TempDir dir;
  std::string path = dir.Write("sharding.toml", R"(
[cluster]
routing = "proxy"

[[shards]]
name = "Delhi"
idx = 0
address = "127.0.0.2:8080"
replicas = ["127.0.0.22:8080"]

[[shards]]
name = "Mumbai"
idx = 1
address = "127.0.0.3:8080"
replica = "127.0.0.33:8080"
)");
  BenchOptions o;
  std::string error;
  REQUIRE(Parse({"--config", path}, &o, &error) == ParseResult::kOk);
  CHECK(o.targets == std::vector<std::string>{"127.0.0.2:8080", "127.0.0.3:8080"});

  std::vector<std::string> primaries;
  std::vector<std::string> replicas;
  REQUIRE(LoadClusterAddresses(path, &primaries, &replicas, &error));
  CHECK(replicas == std::vector<std::string>{"127.0.0.22:8080", "127.0.0.33:8080"});
}

TEST_CASE("a sharding.toml without usable shards is refused") {
  TempDir dir;
  for (const char* text :
       {"[cluster]\nrouting = \"proxy\"\n", "[[shards]]\nname = \"a\"\n",
        "[[shards]]\naddress = \"nowhere\"\n", "[[shards]\naddress = \"127.0.0.1:1\"\n"}) {
    CAPTURE(text);
    std::string path = dir.Write("bad.toml", text);
    BenchOptions o;
    std::string error;
    CHECK(Parse({"--config", path}, &o, &error) == ParseResult::kError);
    CHECK(error.find("bad.toml") != std::string::npos);
  }
}

TEST_CASE("--tls needs --ca; --ca, --cert and --key need --tls; the token is never printed") {
  BenchOptions o;
  std::string error;
  CHECK(Parse({"--targets", "h:1", "--tls"}, &o, &error) == ParseResult::kError);
  CHECK(error.find("--ca") != std::string::npos);
  o = BenchOptions();
  CHECK(Parse({"--targets", "h:1", "--ca", "ca.pem"}, &o, &error) == ParseResult::kError);
  o = BenchOptions();
  CHECK(Parse({"--targets", "h:1", "--tls", "--ca", "ca.pem", "--cert", "c.pem"}, &o, &error) ==
        ParseResult::kError);
  o = BenchOptions();
  REQUIRE(Parse({"--targets", "h:1", "--tls", "--ca", "ca.pem", "--cert", "c.pem", "--key", "k.pem",
                 "--token", "s3cret-token", "--token=s3cret-token"},
                &o, &error) == ParseResult::kOk);
  CHECK(o.tls);
  CHECK(o.tls_ca == "ca.pem");
  CHECK(o.tls_cert == "c.pem");
  CHECK(o.tls_key == "k.pem");
  CHECK(o.token == "s3cret-token");
  CHECK(o.command_line.find("s3cret") == std::string::npos);
  CHECK(o.command_line.find("--token") != std::string::npos);
}

}  // namespace distkv::bench
