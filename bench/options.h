// BenchOptions: what one distkv-bench run does, and the parsing of its
// command line (and, for --config, of the cluster's sharding.toml).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace distkv::bench {

enum class Distribution { kUniform, kZipf };
enum class Api { kKv, kSeed };  // /kv/{key}  vs  /get?key= and /set?key=&value=

struct BenchOptions {
  std::vector<std::string> targets;  // "host:port"; connections are spread over them
  std::string config_path;           // targets came from this sharding.toml
  int connections = 50;
  double duration_s = 10;  // 0 when `requests` bounds the run
  uint64_t requests = 0;
  uint32_t get_weight = 90;
  uint32_t put_weight = 10;
  uint64_t keys = 100'000;
  size_t value_bytes = 100;
  Distribution distribution = Distribution::kUniform;
  double zipf_theta = 0.99;
  int pipeline = 1;  // requests in flight per connection
  Api api = Api::kKv;
  bool preload = false;  // write every key once before the measured run
  bool verify = false;
  double rate = 0;  // requests/s over all connections; 0 = as fast as possible
  std::string json_path;
  uint64_t timeout_ms = 5'000;
  uint64_t seed = 1;
  std::string key_prefix = "key:";
  // HTTPS (--tls): the nodes' certificates are checked against tls_ca; a
  // client certificate (tls_cert, tls_key) is presented when given, for
  // nodes with [tls] verify_clients.
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string token;         // sent as Authorization: Bearer (nodes with [auth])
  bool progress = true;      // progress on stderr: live on a terminal, else plain lines
  std::string command_line;  // the exact command, for the report (the token left out)
};

enum class ParseResult { kOk, kHelp, kError };

// Parses argv[1..] into *options ("--flag value" or "--flag=value").
// kError sets *error to a one-line reason.
ParseResult ParseBenchFlags(int argc, const char* const* argv, BenchOptions* options,
                            std::string* error);

// Reads every node address from a sharding.toml: each [[shards]] `address`
// (the primary) into *primaries, and its `replicas = [..]` / `replica = ".."`
// into *replicas. False with *error naming the problem. Only the primaries
// are load targets (replicas refuse writes); the replicas are read so that a
// malformed file is refused whole.
bool LoadClusterAddresses(const std::string& path, std::vector<std::string>* primaries,
                          std::vector<std::string>* replicas, std::string* error);

// The --help text.
const char* BenchUsage();

}  // namespace distkv::bench
