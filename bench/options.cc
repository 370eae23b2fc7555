// Flag parsing for distkv-bench. Every flag is validated here, so the runner
// can trust BenchOptions; a bad flag is a one-line error (exit code 2 in main).
#include "bench/options.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <exception>
#include <toml.hpp>

#include "net/http_client.h"

namespace distkv::bench {

const char* BenchUsage() {
  return R"(usage: distkv-bench (--targets HOST:PORT[,...] | --config sharding.toml) [options]

Load generator for distkv: GET and PUT of random keys over keep-alive HTTP/1.1
connections, with latency percentiles per operation and optional verification
that every read returns the value last written.

targets
  --targets LIST        comma-separated host:port ([v6]:port) of the nodes to load
  --config FILE         take the shard primaries' addresses from a sharding.toml
                        (replicas refuse writes, so they are not targets)
load
  --connections N       TCP connections, spread over the targets (default 50)
  --pipeline N          requests in flight per connection (default 1)
  --duration S          measured run length in seconds (default 10)
  --requests N          measured run length in requests (instead of --duration)
  --rate R              open loop: R requests/s in total; a request that has to
                        wait for a free connection is timed from its scheduled
                        send time, not from its late send (default: closed loop)
  --timeout-ms N        connect and response timeout (default 5000)
  --tls                 HTTPS, for nodes with [tls]; needs --ca
  --ca FILE             the CA (PEM) the nodes' certificates must be signed by
  --cert FILE, --key FILE
                        a client certificate and its key, for [tls] verify_clients
  --token T             send Authorization: Bearer T, for nodes with [auth] (a
                        write or admin token); DISTKV_TOKEN is read when absent
workload
  --ratio GET:PUT       operation mix by weight (default 90:10)
  --keys N              size of the key space (default 100000)
  --key-prefix P        key names are P0, P1, ... (default "key:")
  --value-bytes N       value size (default 100; at least 32 with --verify)
  --distribution D      uniform | zipf (default uniform)
  --zipf-theta T        skew of zipf, 0 < T < 1 (default 0.99)
  --api A               kv: GET|PUT /kv/{key}; seed: GET /get?key=, POST /set?key=&value=
  --seed N              random seed (default 1)
checks and output
  --preload             write every key once before the measured run
  --verify              check that every read of a key written in this run returns
                        the value of its latest write (or of one still in flight);
                        mismatches are reported and the exit code is 1
  --json FILE           also write the results as JSON
  --no-progress         no progress on stderr (a live line on a terminal, else a
                        plain line every 5 s)
  --help                this text

exit codes: 0 ok, 1 verification mismatches or no successful request, 2 bad flags
)";
}

namespace {

bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParseDouble(const std::string& s, double* out) {
  if (s.empty()) return false;
  size_t used = 0;
  try {
    *out = std::stod(s, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == s.size() && std::isfinite(*out);
}

std::vector<std::string> SplitList(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) comma = s.size();
    std::string_view item = s.substr(start, comma - start);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

bool ValidPeer(const std::string& peer) {
  std::string host;
  int port = 0;
  return net::SplitHostPort(peer, &host, &port);
}

std::string QuoteArg(std::string_view arg) {
  bool plain = !arg.empty();
  for (char c : arg) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("-_./:=,@%+").find(c) != std::string_view::npos)) {
      plain = false;
    }
  }
  if (plain) return std::string(arg);
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  return out + "'";
}

}  // namespace

bool LoadClusterAddresses(const std::string& path, std::vector<std::string>* primaries,
                          std::vector<std::string>* replicas, std::string* error) {
  try {
    const toml::value root = toml::parse(path);
    if (!root.contains("shards")) {
      *error = path + ": no [[shards]]";
      return false;
    }
    for (const toml::value& shard : toml::find<toml::array>(root, "shards")) {
      primaries->push_back(toml::find<std::string>(shard, "address"));
      if (shard.contains("replicas")) {
        for (const std::string& r : toml::find<std::vector<std::string>>(shard, "replicas"))
          replicas->push_back(r);
      }
      if (shard.contains("replica")) replicas->push_back(toml::find<std::string>(shard, "replica"));
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    *error = path + ": " + what.substr(0, what.find('\n'));
    return false;
  }
  if (primaries->empty()) {
    *error = path + ": no [[shards]]";
    return false;
  }
  for (const std::string& a : *primaries) {
    if (!ValidPeer(a)) {
      *error = path + ": address \"" + a + "\" is not host:port";
      return false;
    }
  }
  for (const std::string& a : *replicas) {
    if (!ValidPeer(a)) {
      *error = path + ": replica \"" + a + "\" is not host:port";
      return false;
    }
  }
  return true;
}

ParseResult ParseBenchFlags(int argc, const char* const* argv, BenchOptions* o,
                            std::string* error) {
  o->command_line.clear();
  for (int i = 0; i < argc; ++i) {
    if (i > 0) o->command_line.push_back(' ');
    // The report shows the command; a token is a secret and never printed.
    const std::string_view arg = argv[i];
    if (i > 0 && std::string_view(argv[i - 1]) == "--token") {
      o->command_line += "...";
    } else if (arg.rfind("--token=", 0) == 0) {
      o->command_line += "--token=...";
    } else {
      o->command_line += QuoteArg(argv[i]);
    }
  }
  bool have_duration = false;
  bool have_requests = false;
  bool have_targets = false;

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return ParseResult::kHelp;
    if (arg.rfind("--", 0) != 0) {
      *error = "unexpected argument \"" + arg + "\"";
      return ParseResult::kError;
    }
    std::string name = arg;
    std::string value;
    bool has_value = false;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    // Flags without a value.
    if (name == "--preload" || name == "--verify" || name == "--no-progress" || name == "--tls") {
      if (has_value) {
        *error = name + " takes no value";
        return ParseResult::kError;
      }
      if (name == "--preload") o->preload = true;
      if (name == "--verify") o->verify = true;
      if (name == "--no-progress") o->progress = false;
      if (name == "--tls") o->tls = true;
      continue;
    }
    static const char* const kValueFlags[] = {
        "--targets",    "--config",      "--connections",  "--pipeline",   "--duration",
        "--requests",   "--rate",        "--timeout-ms",   "--ratio",      "--keys",
        "--key-prefix", "--value-bytes", "--distribution", "--zipf-theta", "--api",
        "--json",       "--seed",        "--ca",           "--cert",       "--key",
        "--token"};
    bool known = false;
    for (const char* f : kValueFlags) known = known || name == f;
    if (!known) {
      *error = "unknown flag " + name;
      return ParseResult::kError;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        *error = name + " needs a value";
        return ParseResult::kError;
      }
      value = argv[++i];
    }
    auto bad = [&](const std::string& why) {
      *error = name + " " + QuoteArg(value) + ": " + why;
      return ParseResult::kError;
    };
    uint64_t u = 0;
    double d = 0;
    if (name == "--targets") {
      o->targets = SplitList(value);
      if (o->targets.empty()) return bad("no targets");
      for (const std::string& t : o->targets) {
        if (!ValidPeer(t)) return bad("\"" + t + "\" is not host:port");
      }
      have_targets = true;
    } else if (name == "--config") {
      if (value.empty()) return bad("empty path");
      o->config_path = value;
    } else if (name == "--connections") {
      if (!ParseUint(value, &u) || u < 1 || u > 100'000) return bad("want 1..100000");
      o->connections = static_cast<int>(u);
    } else if (name == "--pipeline") {
      if (!ParseUint(value, &u) || u < 1 || u > 10'000) return bad("want 1..10000");
      o->pipeline = static_cast<int>(u);
    } else if (name == "--duration") {
      if (!ParseDouble(value, &d) || d <= 0 || d > 1e6) return bad("want seconds > 0");
      o->duration_s = d;
      have_duration = true;
    } else if (name == "--requests") {
      if (!ParseUint(value, &u) || u < 1) return bad("want a count >= 1");
      o->requests = u;
      have_requests = true;
    } else if (name == "--rate") {
      if (!ParseDouble(value, &d) || d <= 0 || d > 1e8) return bad("want requests/s > 0");
      o->rate = d;
    } else if (name == "--timeout-ms") {
      if (!ParseUint(value, &u) || u < 1 || u > 3'600'000) return bad("want 1..3600000");
      o->timeout_ms = u;
    } else if (name == "--ratio") {
      size_t colon = value.find(':');
      uint64_t g = 0;
      uint64_t p = 0;
      if (colon == std::string::npos || !ParseUint(std::string_view(value).substr(0, colon), &g) ||
          !ParseUint(std::string_view(value).substr(colon + 1), &p) || g > 1'000'000 ||
          p > 1'000'000 || g + p == 0) {
        return bad("want GET:PUT weights, e.g. 90:10");
      }
      o->get_weight = static_cast<uint32_t>(g);
      o->put_weight = static_cast<uint32_t>(p);
    } else if (name == "--keys") {
      if (!ParseUint(value, &u) || u < 1 || u > 1'000'000'000) return bad("want 1..1000000000");
      o->keys = u;
    } else if (name == "--key-prefix") {
      o->key_prefix = value;
    } else if (name == "--value-bytes") {
      if (!ParseUint(value, &u) || u > (16u << 20)) return bad("want 0..16777216");
      o->value_bytes = u;
    } else if (name == "--distribution") {
      if (value == "uniform")
        o->distribution = Distribution::kUniform;
      else if (value == "zipf")
        o->distribution = Distribution::kZipf;
      else
        return bad("want uniform or zipf");
    } else if (name == "--zipf-theta") {
      if (!ParseDouble(value, &d) || d <= 0 || d >= 1) return bad("want 0 < theta < 1");
      o->zipf_theta = d;
    } else if (name == "--api") {
      if (value == "kv")
        o->api = Api::kKv;
      else if (value == "seed")
        o->api = Api::kSeed;
      else
        return bad("want kv or seed");
    } else if (name == "--json") {
      if (value.empty()) return bad("empty path");
      o->json_path = value;
    } else if (name == "--seed") {
      if (!ParseUint(value, &u)) return bad("want an integer");
      o->seed = u;
    } else if (name == "--ca" || name == "--cert" || name == "--key") {
      if (value.empty()) return bad("empty path");
      (name == "--ca" ? o->tls_ca : name == "--cert" ? o->tls_cert : o->tls_key) = value;
    } else if (name == "--token") {
      if (value.empty()) {
        *error = "--token: empty token";
        return ParseResult::kError;
      }
      o->token = value;
    }
  }

  if (have_duration && have_requests) {
    *error = "give --duration or --requests, not both";
    return ParseResult::kError;
  }
  if (have_requests) o->duration_s = 0;
  if (have_targets && !o->config_path.empty()) {
    *error = "give --targets or --config, not both";
    return ParseResult::kError;
  }
  if (!have_targets && o->config_path.empty()) {
    *error = "no targets: give --targets host:port,... or --config sharding.toml";
    return ParseResult::kError;
  }
  if (!o->config_path.empty()) {
    std::vector<std::string> primaries;
    std::vector<std::string> replicas;
    if (!LoadClusterAddresses(o->config_path, &primaries, &replicas, error))
      return ParseResult::kError;
    o->targets = primaries;
  }
  if (o->tls && o->tls_ca.empty()) {
    *error = "--tls needs --ca FILE: the CA the nodes' certificates are checked against";
    return ParseResult::kError;
  }
  if (!o->tls && (!o->tls_ca.empty() || !o->tls_cert.empty() || !o->tls_key.empty())) {
    *error = "--ca, --cert and --key go with --tls";
    return ParseResult::kError;
  }
  if (o->tls_cert.empty() != o->tls_key.empty()) {
    *error = "--cert and --key go together";
    return ParseResult::kError;
  }
  if (o->verify && o->value_bytes < 32) {
    *error = "--verify needs --value-bytes of at least 32 (values carry their key and version)";
    return ParseResult::kError;
  }
  return ParseResult::kOk;
}

}  // namespace distkv::bench
