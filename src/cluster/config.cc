// Reading sharding.toml with toml11. toml11 reports syntax and type errors as
// exceptions with multi-line, source-quoting messages; they are caught here
// and reduced to the project's one-line form "file:line: field: problem".
#include "src/cluster/config.h"

#include <toml.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace distkv {
namespace {

// Thrown inside this file only; LoadConfig turns it into a return value.
struct ConfigError {
  std::string message;
};

[[noreturn]] void Fail(const std::string& source, const toml::value& at, const std::string& field,
                       const std::string& problem) {
  std::ostringstream out;
  out << source;
  const auto loc = at.location();
  if (loc.line() > 0 && loc.file_name() != "unknown file") out << ":" << loc.line();
  out << ": " << field << ": " << problem;
  throw ConfigError{out.str()};
}

std::string TypeName(const toml::value& v) {
  std::ostringstream out;
  out << v.type();
  return out.str();
}

// Reads an optional key of a table with the expected type.
template <typename T>
bool Optional(const std::string& source, const toml::value& table, const std::string& section,
              const std::string& key, T* out) {
  if (!table.is_table() || !table.contains(key)) return false;
  const toml::value& v = table.at(key);
  try {
    *out = toml::get<T>(v);
  } catch (const std::exception&) {
    Fail(source, v, section + "." + key, "has the wrong type (" + TypeName(v) + ")");
  }
  return true;
}

uint64_t OptionalCount(const std::string& source, const toml::value& table,
                       const std::string& section, const std::string& key, uint64_t fallback,
                       uint64_t min_value) {
  int64_t n = 0;
  if (!Optional(source, table, section, key, &n)) return fallback;
  if (n < static_cast<int64_t>(min_value)) {
    Fail(source, table.at(key), section + "." + key,
         "must be at least " + std::to_string(min_value));
  }
  return static_cast<uint64_t>(n);
}

bool ValidAddress(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  for (size_t i = colon + 1; i < address.size(); ++i) {
    if (address[i] < '0' || address[i] > '9') return false;
  }
  long port = std::stol(address.substr(colon + 1));
  return port > 0 && port < 65536;
}

SlotRange ParseSlotRange(const std::string& source, const toml::value& v,
                         const std::string& field) {
  int64_t first = -1, last = -1;
  if (v.is_string()) {  // "0-4095" or "17"
    const std::string& s = v.as_string().str;
    auto dash = s.find('-');
    try {
      size_t used = 0;
      first = std::stoll(s.substr(0, dash), &used);
      last = dash == std::string::npos ? first : std::stoll(s.substr(dash + 1));
    } catch (const std::exception&) {
      Fail(source, v, field, "expected \"first-last\", got \"" + s + "\"");
    }
  } else if (v.is_array() && v.as_array().size() == 2 && v.as_array()[0].is_integer() &&
             v.as_array()[1].is_integer()) {
    first = v.as_array()[0].as_integer();
    last = v.as_array()[1].as_integer();
  } else if (v.is_integer()) {
    first = last = v.as_integer();
  } else {
    Fail(source, v, field, "expected [first, last] or \"first-last\"");
  }
  if (first < 0 || last < first || last >= static_cast<int64_t>(kSlotCount)) {
    Fail(source, v, field,
         "range " + std::to_string(first) + "-" + std::to_string(last) + " is not within 0-" +
             std::to_string(kSlotCount - 1));
  }
  return SlotRange{static_cast<uint32_t>(first), static_cast<uint32_t>(last)};
}

ShardConfig ParseShard(const std::string& source, const toml::value& t, size_t position) {
  const std::string field = "shards[" + std::to_string(position) + "]";
  if (!t.is_table()) Fail(source, t, field, "must be a table ([[shards]])");
  ShardConfig shard;
  if (!Optional(source, t, field, "name", &shard.name) || shard.name.empty()) {
    Fail(source, t, field + ".name", "is required (a non-empty string)");
  }
  int64_t idx = 0;
  if (!Optional(source, t, field, "idx", &idx)) Fail(source, t, field + ".idx", "is required");
  if (idx < 0) Fail(source, t.at("idx"), field + ".idx", "must not be negative");
  shard.idx = static_cast<int>(idx);
  if (!Optional(source, t, field, "address", &shard.address)) {
    Fail(source, t, field + ".address", "is required (\"host:port\")");
  }
  if (!ValidAddress(shard.address)) {
    Fail(source, t.at("address"), field + ".address", "\"" + shard.address + "\" is not host:port");
  }
  if (t.contains("replicas")) {
    Optional(source, t, field, "replicas", &shard.replicas);
  }
  std::string single;
  if (Optional(source, t, field, "replica", &single) && !single.empty()) {
    shard.replicas.push_back(single);
  }
  for (const auto& r : shard.replicas) {
    if (!ValidAddress(r)) Fail(source, t, field + ".replicas", "\"" + r + "\" is not host:port");
  }
  if (t.contains("slots")) {
    const toml::value& s = t.at("slots");
    if (!s.is_array()) Fail(source, s, field + ".slots", "must be an array of ranges");
    size_t i = 0;
    for (const auto& r : s.as_array()) {
      shard.slots.push_back(
          ParseSlotRange(source, r, field + ".slots[" + std::to_string(i++) + "]"));
    }
  }
  return shard;
}

SlotRange DefaultRange(int idx, size_t shards) {
  return SlotRange{static_cast<uint32_t>(idx * kSlotCount / shards),
                   static_cast<uint32_t>((idx + 1) * kSlotCount / shards - 1)};
}

void Validate(const std::string& source, const toml::value& root, ClusterConfig* config) {
  const toml::value& shards_value = root.at("shards");
  auto at = [&](size_t i) -> const toml::value& { return shards_value.as_array()[i]; };
  std::map<std::string, size_t> names, addresses;
  std::map<int, size_t> idxs;
  for (size_t i = 0; i < config->shards.size(); ++i) {
    const ShardConfig& s = config->shards[i];
    const std::string field = "shards[" + std::to_string(i) + "]";
    if (!names.emplace(s.name, i).second) {
      Fail(source, at(i), field + ".name", "duplicate shard name \"" + s.name + "\"");
    }
    if (!idxs.emplace(s.idx, i).second) {
      Fail(source, at(i), field + ".idx", "duplicate idx " + std::to_string(s.idx));
    }
    std::vector<std::string> nodes = s.replicas;
    nodes.push_back(s.address);
    for (const auto& a : nodes) {
      if (!addresses.emplace(a, i).second) {
        Fail(source, at(i), field, "address " + a + " is used twice");
      }
    }
  }
  // Every write would wait for acknowledgements that cannot come.
  for (size_t i = 0; i < config->shards.size(); ++i) {
    const ShardConfig& s = config->shards[i];
    if (static_cast<size_t>(config->min_acks) > s.replicas.size()) {
      Fail(source, root.at("replication").at("min_acks"), "replication.min_acks",
           std::to_string(config->min_acks) + " but shard \"" + s.name + "\" lists " +
               std::to_string(s.replicas.size()) + " replica(s)");
    }
  }
  for (size_t i = 0; i < config->shards.size(); ++i) {
    if (!idxs.count(static_cast<int>(i))) {
      Fail(source, shards_value, "shards",
           "idx values must be 0.." + std::to_string(config->shards.size() - 1) +
               " without gaps; " + std::to_string(i) + " is missing");
    }
  }
  std::sort(config->shards.begin(), config->shards.end(),
            [](const ShardConfig& a, const ShardConfig& b) { return a.idx < b.idx; });

  // Every slot must have exactly one owner.
  std::vector<int> owner(kSlotCount, -1);
  for (auto& s : config->shards) {
    if (s.slots.empty()) s.slots.push_back(DefaultRange(s.idx, config->shards.size()));
    for (const auto& r : s.slots) {
      for (uint32_t slot = r.first; slot <= r.last; ++slot) {
        if (owner[slot] >= 0) {
          Fail(source, at(names[s.name]), "shards[" + std::to_string(names[s.name]) + "].slots",
               "slot " + std::to_string(slot) + " is owned by both \"" +
                   config->shards[owner[slot]].name + "\" and \"" + s.name + "\"");
        }
        owner[slot] = s.idx;
      }
    }
  }
  for (uint32_t slot = 0; slot < kSlotCount; ++slot) {
    if (owner[slot] < 0) {
      Fail(source, shards_value, "shards", "slot " + std::to_string(slot) + " has no owner");
    }
  }
}

void ParseRoot(const std::string& source, const toml::value& root, ClusterConfig* config) {
  config->source = source;
  if (root.contains("cluster")) {
    const toml::value& c = root.at("cluster");
    std::string routing;
    if (Optional(source, c, "cluster", "routing", &routing)) {
      if (routing == "proxy") {
        config->routing = RoutingMode::kProxy;
      } else if (routing == "redirect") {
        config->routing = RoutingMode::kRedirect;
      } else {
        Fail(source, c.at("routing"), "cluster.routing",
             "\"" + routing + "\" is neither \"proxy\" nor \"redirect\"");
      }
    }
    config->forward_timeout_ms =
        OptionalCount(source, c, "cluster", "forward_timeout_ms", config->forward_timeout_ms, 1);
    config->connect_timeout_ms =
        OptionalCount(source, c, "cluster", "connect_timeout_ms", config->connect_timeout_ms, 1);
  }
  if (root.contains("storage")) {
    const toml::value& s = root.at("storage");
    std::string fsync;
    if (Optional(source, s, "storage", "fsync", &fsync) &&
        !storage::ParseFsyncMode(fsync, &config->fsync)) {
      Fail(source, s.at("fsync"), "storage.fsync",
           "\"" + fsync + "\" is not one of \"always\", \"everysec\", \"never\"");
    }
    config->segment_bytes =
        OptionalCount(source, s, "storage", "segment_bytes", config->segment_bytes, 4096);
  }
  if (root.contains("limits")) {
    const toml::value& l = root.at("limits");
    config->max_key_bytes =
        OptionalCount(source, l, "limits", "max_key_bytes", config->max_key_bytes, 1);
    config->max_value_bytes =
        OptionalCount(source, l, "limits", "max_value_bytes", config->max_value_bytes, 0);
    if (config->max_key_bytes > 65535) {
      Fail(source, l.at("max_key_bytes"), "limits.max_key_bytes", "must be at most 65535");
    }
  }
  // The body limit follows the value limit unless [server] says otherwise.
  config->server.max_body_bytes = config->max_value_bytes + 4096;
  if (root.contains("server")) {
    const toml::value& s = root.at("server");
    net::ServerLimits& l = config->server;
    l.max_connections = OptionalCount(source, s, "server", "max_connections", l.max_connections, 1);
    l.header_timeout_ms =
        OptionalCount(source, s, "server", "header_timeout_ms", l.header_timeout_ms, 1);
    l.idle_timeout_ms = OptionalCount(source, s, "server", "idle_timeout_ms", l.idle_timeout_ms, 1);
    l.max_url_bytes = OptionalCount(source, s, "server", "max_url_bytes", l.max_url_bytes, 64);
    l.max_header_bytes =
        OptionalCount(source, s, "server", "max_header_bytes", l.max_header_bytes, 256);
    l.max_body_bytes = OptionalCount(source, s, "server", "max_body_bytes", l.max_body_bytes, 0);
    l.max_pipelined = OptionalCount(source, s, "server", "max_pipelined", l.max_pipelined, 1);
  }
  if (root.contains("replication")) {
    const toml::value& r = root.at("replication");
    config->min_acks = static_cast<int>(OptionalCount(source, r, "replication", "min_acks", 0, 0));
    config->ack_timeout_ms =
        OptionalCount(source, r, "replication", "ack_timeout_ms", config->ack_timeout_ms, 1);
  }
  if (!root.contains("shards") || !root.at("shards").is_array() ||
      root.at("shards").as_array().empty()) {
    Fail(source, root, "shards", "at least one [[shards]] entry is required");
  }
  size_t i = 0;
  for (const auto& t : root.at("shards").as_array())
    config->shards.push_back(ParseShard(source, t, i++));
  Validate(source, root, config);
}

// toml11's syntax errors read "[error] toml::parse_...: <what>\n --> file\n  3 | ...".
// Keep the first line's message and the line number.
std::string SyntaxErrorLine(const std::string& source, const std::string& what) {
  std::string first = what.substr(0, what.find('\n'));
  auto colon = first.find(": ");
  if (first.rfind("[error]", 0) == 0 && colon != std::string::npos) first = first.substr(colon + 2);
  std::string line;
  std::istringstream lines(what);
  for (std::string l; std::getline(lines, l);) {
    auto bar = l.find(" | ");
    if (bar != std::string::npos) {
      std::string num = l.substr(0, bar);
      num.erase(std::remove(num.begin(), num.end(), ' '), num.end());
      if (!num.empty() && std::all_of(num.begin(), num.end(), ::isdigit)) {
        line = num;
        break;
      }
    }
  }
  return source + (line.empty() ? "" : ":" + line) + ": syntax: " + first;
}

bool ParseStream(std::istream& in, const std::string& name, ClusterConfig* config,
                 std::string* error) {
  try {
    const toml::value root = toml::parse(in, name);
    ClusterConfig parsed;
    ParseRoot(name, root, &parsed);
    *config = std::move(parsed);
    return true;
  } catch (const ConfigError& e) {
    *error = e.message;
  } catch (const toml::syntax_error& e) {
    *error = SyntaxErrorLine(name, e.what());
  } catch (const std::exception& e) {
    *error = SyntaxErrorLine(name, e.what());
  }
  return false;
}

}  // namespace

bool LoadConfig(const std::string& path, ClusterConfig* config, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": cannot be read (does the file exist?)";
    return false;
  }
  return ParseStream(in, path, config, error);
}

bool ParseConfig(const std::string& text, const std::string& name, ClusterConfig* config,
                 std::string* error) {
  std::istringstream in(text);
  return ParseStream(in, name, config, error);
}

ClusterConfig SingleNodeConfig(const std::string& address) {
  ClusterConfig config;
  config.source = "(built-in single-node config)";
  ShardConfig shard;
  shard.name = "default";
  shard.idx = 0;
  shard.address = address;
  shard.slots.push_back(SlotRange{0, kSlotCount - 1});
  config.shards.push_back(shard);
  config.server.max_body_bytes = config.max_value_bytes + 4096;
  return config;
}

}  // namespace distkv
