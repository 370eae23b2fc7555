// Reading sharding.toml with toml11. toml11 reports syntax and type errors as
// exceptions with multi-line, source-quoting messages; they are caught here
// and reduced to the project's one-line form "file:line: field: problem".
#include "src/cluster/config.h"

#include <sys/stat.h>
#include <toml.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <vector>

#include "net/address.h"
#include "src/cluster/migration.h"
#include "src/cluster/toml_text.h"
#include "storage/key_index.h"
#include "storage/record_format.h"

namespace distkv {
namespace {

// Every key sharding.toml may hold, by section. A section or key not listed
// here is refused with file:line, so a misspelt setting ("min_ack", "fsnyc",
// "[storag]") can never silently not apply.
//
// To add a setting: add its key to its section's row here (or a new row for a
// new section such as [auth]), then read it in ParseRoot (ParseShard for keys
// of a [[shards]] entry) with Optional/OptionalCount, which check its type and
// range, or OptionalChoice for a word from a fixed set. A section read
// elsewhere (e.g. a subsystem's own parser) still needs its row here.
struct SectionKeys {
  const char* section;
  std::initializer_list<const char*> keys;
};
// Below this a compaction's pace is surely a mistake (a figure in MB meant
// as bytes): a 1 GiB merge would take hours.
constexpr uint64_t kMinCompactBytesPerS = 1 << 20;

const SectionKeys kKnownKeys[] = {
    {"cluster", {"routing", "forward_timeout_ms", "connect_timeout_ms", "forward_max_connections"}},
    {"storage",
     {"fsync", "reads", "segment_bytes", "compact_dead_ratio", "compact_min_bytes",
      "compact_priority", "compact_bytes_per_s", "replica_keep_records", "replica_keep_bytes"}},
    {"limits", {"max_key_bytes", "max_value_bytes"}},
    {"server",
     {"max_connections", "header_timeout_ms", "idle_timeout_ms", "max_url_bytes",
      "max_header_bytes", "max_body_bytes", "max_pipelined", "body_timeout_ms",
      "min_body_bytes_per_s", "shutdown_timeout_ms", "max_staged_bytes"}},
    {"replication", {"min_acks", "ack_timeout_ms", "stall_timeout_ms"}},
    {"auth", {"cluster_secret", "cluster_secret_file", "tokens", "tokens_file", "status_role"}},
    {"tls", {"cert", "key", "ca", "verify_clients"}},
    {"coordinator", {"etcd", "prefix", "lease_ttl_ms", "max_lag_records", "primary_reads"}},
    // [[shards]] entries: the seed projects' name, idx, address, replicas and
    // replica, plus slots.
    {"shards", {"name", "idx", "address", "replicas", "replica", "slots"}},
};

// Thrown inside this file only; LoadConfig turns it into a return value.
struct ConfigError {
  std::string message;
};

toml::value ParseToml(const std::string& text, const std::string& name) {
  std::string error;
  if (!CheckTomlText(text, name, &error)) throw ConfigError{error};
  std::istringstream in(text);
  return toml::parse(in, name);
}

[[noreturn]] void Fail(const std::string& source, const toml::value& at, const std::string& field,
                       const std::string& problem) {
  std::ostringstream out;
  out << source;
  const auto loc = at.location();
  if (loc.line() > 0 && loc.file_name() != "unknown file") out << ":" << loc.line();
  out << ": " << field << ": " << problem;
  throw ConfigError{out.str()};
}

const SectionKeys* FindSection(const std::string& name) {
  for (const auto& s : kKnownKeys) {
    if (name == s.section) return &s;
  }
  return nullptr;
}

void CheckKeys(const std::string& source, const toml::value& table, const SectionKeys& known,
               const std::string& field) {
  for (const auto& [key, value] : table.as_table()) {
    bool found = false;
    for (const char* k : known.keys) found = found || key == k;
    if (found) continue;
    std::string list;
    for (const char* k : known.keys) list += std::string(list.empty() ? "" : ", ") + k;
    Fail(source, value, field + "." + key, "unknown key (known keys: " + list + ")");
  }
}

// Refuses sections and keys that kKnownKeys does not list.
void CheckKnownKeys(const std::string& source, const toml::value& root) {
  for (const auto& [name, value] : root.as_table()) {
    const SectionKeys* known = FindSection(name);
    if (known == nullptr) {
      std::string list;
      for (const auto& s : kKnownKeys) list += std::string(list.empty() ? "" : ", ") + s.section;
      Fail(source, value, name,
           value.is_table() ? "unknown section (known sections: " + list + ")"
                            : "unknown top-level key (settings belong in a section: " + list + ")");
    }
    if (name == "shards") {
      if (!value.is_array()) Fail(source, value, "shards", "must be written as [[shards]] entries");
      size_t i = 0;
      for (const auto& entry : value.as_array()) {
        const std::string field = "shards[" + std::to_string(i++) + "]";
        if (!entry.is_table()) Fail(source, entry, field, "must be a table ([[shards]])");
        CheckKeys(source, entry, *known, field);
      }
    } else {
      if (!value.is_table()) Fail(source, value, name, "must be a section ([" + name + "])");
      CheckKeys(source, value, *known, name);
    }
  }
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

// One of a setting's fixed choices: the word written in the file and what it
// means.
template <typename T>
struct Choice {
  std::string_view name;
  T value;
};

// The choices of an enum whose module names its values (name_of).
template <typename T, typename NameOf>
std::vector<Choice<T>> NamedChoices(std::initializer_list<T> values, NameOf name_of) {
  std::vector<Choice<T>> choices;
  for (T v : values) choices.push_back({name_of(v), v});
  return choices;
}

// Reads an optional string that must be one of choices into *out (left
// alone when the key is absent). Any other value is refused, listing them
// all, so every such setting explains itself the same way.
template <typename T>
bool OptionalChoice(const std::string& source, const toml::value& table, const std::string& section,
                    const std::string& key, const std::vector<Choice<T>>& choices, T* out) {
  std::string text;
  if (!Optional(source, table, section, key, &text)) return false;
  std::string names;
  for (const Choice<T>& c : choices) {
    if (text == c.name) {
      *out = c.value;
      return true;
    }
    names += (names.empty() ? "\"" : ", \"") + std::string(c.name) + "\"";
  }
  Fail(source, table.at(key), section + "." + key, "\"" + text + "\" is not one of " + names);
}

// Reads an optional non-negative integer within [min_value, max_value].
uint64_t OptionalCount(const std::string& source, const toml::value& table,
                       const std::string& section, const std::string& key, uint64_t fallback,
                       uint64_t min_value, uint64_t max_value = INT64_MAX) {
  int64_t n = 0;
  if (!Optional(source, table, section, key, &n)) return fallback;
  if (n < static_cast<int64_t>(min_value)) {
    Fail(source, table.at(key), section + "." + key,
         "must be at least " + std::to_string(min_value));
  }
  if (static_cast<uint64_t>(n) > max_value) {
    Fail(source, table.at(key), section + "." + key,
         std::to_string(n) + " is above the limit of " + std::to_string(max_value));
  }
  return static_cast<uint64_t>(n);
}

void CheckAddress(const std::string& source, const toml::value& at, const std::string& field,
                  const std::string& address) {
  net::HostPort parsed;
  std::string problem;
  if (!net::ParseHostPort(address, &parsed, &problem)) {
    Fail(source, at, field, "\"" + address + "\" is not host:port: " + problem);
  }
}

SlotRange ParseSlotRange(const std::string& source, const toml::value& v,
                         const std::string& field) {
  if (v.is_string()) {  // "0-4095" or "17": read as the admin endpoints read it
    const std::string& s = v.as_string().str;
    SlotRange range;
    if (!ParseSlotRangeText(s, &range)) {
      Fail(source, v, field,
           "\"" + s + "\" is not a slot range (\"first-last\" or \"slot\", within 0-" +
               std::to_string(kSlotCount - 1) + ")");
    }
    return range;
  }
  int64_t first = -1, last = -1;
  if (v.is_array() && v.as_array().size() == 2 && v.as_array()[0].is_integer() &&
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

ShardConfig ParseShard(const std::string& source, const toml::value& t, size_t position,
                       size_t count) {
  const std::string field = "shards[" + std::to_string(position) + "]";
  if (!t.is_table()) Fail(source, t, field, "must be a table ([[shards]])");
  ShardConfig shard;
  if (!Optional(source, t, field, "name", &shard.name) || shard.name.empty()) {
    Fail(source, t, field + ".name", "is required (a non-empty string)");
  }
  int64_t idx = 0;
  if (!Optional(source, t, field, "idx", &idx)) Fail(source, t, field + ".idx", "is required");
  if (idx < 0 || static_cast<uint64_t>(idx) >= count) {
    Fail(source, t.at("idx"), field + ".idx",
         std::to_string(idx) + " is not within 0-" + std::to_string(count - 1) + " (there are " +
             std::to_string(count) + " shards)");
  }
  shard.idx = static_cast<int>(idx);
  if (!Optional(source, t, field, "address", &shard.address)) {
    Fail(source, t, field + ".address", "is required (\"host:port\")");
  }
  CheckAddress(source, t.at("address"), field + ".address", shard.address);
  if (t.contains("replicas")) {
    Optional(source, t, field, "replicas", &shard.replicas);
  }
  std::string single;
  if (Optional(source, t, field, "replica", &single) && !single.empty()) {
    shard.replicas.push_back(single);
  }
  for (const auto& r : shard.replicas) {
    CheckAddress(source, t.contains("replicas") ? t.at("replicas") : t.at("replica"),
                 field + ".replicas", r);
  }
  if (t.contains("slots")) {
    const toml::value& s = t.at("slots");
    if (!s.is_array()) Fail(source, s, field + ".slots", "must be an array of ranges");
    size_t i = 0;
    for (const auto& r : s.as_array()) {
      shard.slots.push_back(
          ParseSlotRange(source, r, field + ".slots[" + std::to_string(i++) + "]"));
    }
    shard.owns_nothing = shard.slots.empty();
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
  // Each idx is within 0..N-1 (ParseShard) and none repeats, so there is no gap.
  std::sort(config->shards.begin(), config->shards.end(),
            [](const ShardConfig& a, const ShardConfig& b) { return a.idx < b.idx; });

  // Every slot must have exactly one owner. Shards that own nothing take no
  // part in the default split (without them, each shard's range is its idx's).
  const size_t splitting =
      static_cast<size_t>(std::count_if(config->shards.begin(), config->shards.end(),
                                        [](const ShardConfig& s) { return !s.owns_nothing; }));
  std::vector<int> owner(kSlotCount, -1);
  int rank = 0;
  for (auto& s : config->shards) {
    if (s.owns_nothing) continue;
    if (s.slots.empty()) s.slots.push_back(DefaultRange(rank, splitting));
    rank++;
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

// A path in the config is relative to the config file's directory.
std::string ResolvePath(const std::string& source, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  auto slash = source.rfind('/');
  return slash == std::string::npos ? path : source.substr(0, slash + 1) + path;
}

// Reads a file that holds secrets: it must exist and be closed to group and
// others, as ssh insists for its keys. Its content is never put in a message.
std::string ReadSecretFile(const std::string& source, const toml::value& at,
                           const std::string& field, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) Fail(source, at, field, path + " cannot be read");
  if (st.st_mode & 077) {
    Fail(source, at, field, path + " is readable by group or others; chmod 600 it");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) Fail(source, at, field, path + " cannot be read");
  return text.str();
}

// [auth] cluster_secret | cluster_secret_file, tokens | tokens_file, status_role.
void ParseAuth(const std::string& source, const toml::value& a, AuthConfig* auth) {
  constexpr size_t kMinSecretBytes = 16;
  std::string file;
  if (Optional(source, a, "auth", "cluster_secret_file", &file)) {
    if (a.contains("cluster_secret")) {
      Fail(source, a.at("cluster_secret"), "auth.cluster_secret",
           "give cluster_secret or cluster_secret_file, not both");
    }
    auth->cluster_secret = ReadSecretFile(source, a.at("cluster_secret_file"),
                                          "auth.cluster_secret_file", ResolvePath(source, file));
    while (!auth->cluster_secret.empty() &&
           (auth->cluster_secret.back() == '\n' || auth->cluster_secret.back() == '\r')) {
      auth->cluster_secret.pop_back();
    }
  } else if (!Optional(source, a, "auth", "cluster_secret", &auth->cluster_secret)) {
    Fail(source, a, "auth.cluster_secret",
         "is required with [auth] (the nodes prove themselves to each other with it)");
  }
  if (auth->cluster_secret.size() < kMinSecretBytes) {
    Fail(source, a, "auth.cluster_secret",
         "must be at least " + std::to_string(kMinSecretBytes) + " bytes");
  }
  OptionalChoice(source, a, "auth", "status_role",
                 NamedChoices({Role::kNone, Role::kRead, Role::kWrite, Role::kAdmin}, RoleName),
                 &auth->status_role);

  // tokens = [ { token = "...", role = "read" }, ... ], here or in tokens_file.
  toml::value tokens_file_root;
  const toml::value* tokens = nullptr;
  std::string tokens_source = source;
  if (Optional(source, a, "auth", "tokens_file", &file)) {
    if (a.contains("tokens")) {
      Fail(source, a.at("tokens"), "auth.tokens", "give tokens or tokens_file, not both");
    }
    tokens_source = ResolvePath(source, file);
    tokens_file_root =
        ParseToml(ReadSecretFile(source, a.at("tokens_file"), "auth.tokens_file", tokens_source),
                  tokens_source);
    if (!tokens_file_root.contains("tokens")) {
      Fail(tokens_source, tokens_file_root, "tokens", "is required in a tokens_file");
    }
    tokens = &tokens_file_root.at("tokens");
  } else if (a.contains("tokens")) {
    tokens = &a.at("tokens");
  }
  if (tokens == nullptr) return;
  if (!tokens->is_array()) Fail(tokens_source, *tokens, "auth.tokens", "must be an array");
  size_t i = 0;
  for (const toml::value& t : tokens->as_array()) {
    const std::string field = "auth.tokens[" + std::to_string(i++) + "]";
    std::string token;
    Role r = Role::kNone;
    static const SectionKeys kTokenKeys = {"tokens", {"token", "role"}};
    if (t.is_table()) CheckKeys(tokens_source, t, kTokenKeys, field);
    if (!t.is_table() || !Optional(tokens_source, t, field, "token", &token) ||
        !OptionalChoice(tokens_source, t, field, "role",
                        NamedChoices({Role::kRead, Role::kWrite, Role::kAdmin}, RoleName), &r)) {
      Fail(tokens_source, t, field, "must be { token = \"...\", role = \"read|write|admin\" }");
    }
    // The messages below name the entry, never the token itself.
    if (token.size() < kMinSecretBytes) {
      Fail(tokens_source, t, field + ".token",
           "must be at least " + std::to_string(kMinSecretBytes) + " bytes");
    }
    if (token == auth->cluster_secret) {
      Fail(tokens_source, t, field + ".token", "must differ from the cluster secret");
    }
    for (const auto& [other, unused] : auth->tokens) {
      if (other == token) Fail(tokens_source, t, field + ".token", "is listed twice");
    }
    auth->tokens.emplace_back(token, r);
  }
}

void ParseRoot(const std::string& source, const toml::value& root, ClusterConfig* config) {
  config->source = source;
  CheckKnownKeys(source, root);
  if (root.contains("cluster")) {
    const toml::value& c = root.at("cluster");
    OptionalChoice(source, c, "cluster", "routing",
                   {{"proxy", RoutingMode::kProxy}, {"redirect", RoutingMode::kRedirect}},
                   &config->routing);
    config->forward_timeout_ms =
        OptionalCount(source, c, "cluster", "forward_timeout_ms", config->forward_timeout_ms, 1);
    config->connect_timeout_ms =
        OptionalCount(source, c, "cluster", "connect_timeout_ms", config->connect_timeout_ms, 1);
    config->forward_max_connections = OptionalCount(source, c, "cluster", "forward_max_connections",
                                                    config->forward_max_connections, 1);
  }
  config->ack_timeout_ms = std::max<uint64_t>(1, config->forward_timeout_ms * 3 / 4);
  if (root.contains("storage")) {
    const toml::value& s = root.at("storage");
    using storage::FsyncMode;
    OptionalChoice(source, s, "storage", "fsync",
                   NamedChoices({FsyncMode::kAlways, FsyncMode::kEverySec, FsyncMode::kNever},
                                storage::FsyncModeName),
                   &config->fsync);
    OptionalChoice(source, s, "storage", "reads", {{"durable", false}, {"latest", true}},
                   &config->reads_latest);
    config->segment_bytes = OptionalCount(source, s, "storage", "segment_bytes",
                                          config->segment_bytes, 4096, storage::kMaxIndexOffset);
    if (s.is_table() && s.contains("compact_dead_ratio")) {
      const toml::value& v = s.at("compact_dead_ratio");
      if (v.is_floating()) {
        config->compact_dead_ratio = v.as_floating();
      } else if (v.is_integer()) {
        config->compact_dead_ratio = static_cast<double>(v.as_integer());
      } else {
        Fail(source, v, "storage.compact_dead_ratio", "has the wrong type (" + TypeName(v) + ")");
      }
      if (!(config->compact_dead_ratio >= 0 && config->compact_dead_ratio <= 1)) {
        Fail(source, v, "storage.compact_dead_ratio",
             "must be between 0 (no automatic compaction) and 1");
      }
    }
    config->compact_min_bytes =
        OptionalCount(source, s, "storage", "compact_min_bytes", config->compact_min_bytes, 0);
    using P = ClusterConfig::CompactPriority;
    OptionalChoice(source, s, "storage", "compact_priority",
                   {{"idle", P::kIdle}, {"low", P::kLow}, {"normal", P::kNormal}},
                   &config->compact_priority);
    config->compact_bytes_per_s =
        OptionalCount(source, s, "storage", "compact_bytes_per_s", config->compact_bytes_per_s, 0);
    if (config->compact_bytes_per_s > 0 && config->compact_bytes_per_s < kMinCompactBytesPerS) {
      Fail(source, s.at("compact_bytes_per_s"), "storage.compact_bytes_per_s",
           "must be 0 (unpaced) or at least " + std::to_string(kMinCompactBytesPerS) +
               " (1 MiB/s; the value is in bytes per second)");
    }
    config->replica_keep_records = OptionalCount(source, s, "storage", "replica_keep_records",
                                                 config->replica_keep_records, 0);
    config->replica_keep_bytes =
        OptionalCount(source, s, "storage", "replica_keep_bytes", config->replica_keep_bytes, 0);
  }
  if (root.contains("limits")) {
    const toml::value& l = root.at("limits");
    config->max_key_bytes =
        OptionalCount(source, l, "limits", "max_key_bytes", config->max_key_bytes, 1);
    config->max_value_bytes = OptionalCount(source, l, "limits", "max_value_bytes",
                                            config->max_value_bytes, 0, storage::kMaxValueBytes);
    if (config->max_key_bytes > 65535) {
      Fail(source, l.at("max_key_bytes"), "limits.max_key_bytes", "must be at most 65535");
    }
  }
  // The body limit follows the value limit, and the URL limit the key limit
  // (every byte %-escaped, plus a query), unless [server] says otherwise.
  config->server.max_body_bytes = config->max_value_bytes + 4096;
  config->server.max_url_bytes =
      std::max<size_t>(config->server.max_url_bytes, 3 * config->max_key_bytes + 1024);
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
    l.body_timeout_ms = OptionalCount(source, s, "server", "body_timeout_ms", l.body_timeout_ms, 1);
    l.min_body_bytes_per_s =
        OptionalCount(source, s, "server", "min_body_bytes_per_s", l.min_body_bytes_per_s, 1);
    l.shutdown_timeout_ms =
        OptionalCount(source, s, "server", "shutdown_timeout_ms", l.shutdown_timeout_ms, 1);
    l.max_staged_bytes =
        OptionalCount(source, s, "server", "max_staged_bytes", l.max_staged_bytes, 1);
  }
  if (root.contains("replication")) {
    const toml::value& r = root.at("replication");
    config->min_acks =
        static_cast<int>(OptionalCount(source, r, "replication", "min_acks", 0, 0, 1000));
    config->ack_timeout_ms =
        OptionalCount(source, r, "replication", "ack_timeout_ms", config->ack_timeout_ms, 1);
    config->stall_timeout_ms =
        OptionalCount(source, r, "replication", "stall_timeout_ms", config->stall_timeout_ms, 1);
    if (r.contains("ack_timeout_ms") && config->ack_timeout_ms >= config->forward_timeout_ms) {
      Fail(source, r.at("ack_timeout_ms"), "replication.ack_timeout_ms",
           std::to_string(config->ack_timeout_ms) + " must be below cluster.forward_timeout_ms (" +
               std::to_string(config->forward_timeout_ms) +
               ") so that a forwarded write reports the replica timeout itself");
    }
  }
  if (root.contains("auth")) {
    ParseAuth(source, root.at("auth"), &config->auth);
    config->auth.enabled = true;
  }
  if (root.contains("tls")) {
    const toml::value& t = root.at("tls");
    config->tls = true;
    for (auto [key, path] :
         {std::pair{"cert", &config->tls_files.cert}, std::pair{"key", &config->tls_files.key},
          std::pair{"ca", &config->tls_files.ca}}) {
      if (!Optional(source, t, "tls", key, path) || path->empty()) {
        Fail(source, t, std::string("tls.") + key,
             "is required with [tls] (a PEM file; the nodes verify each other against ca)");
      }
      *path = ResolvePath(source, *path);
    }
    Optional(source, t, "tls", "verify_clients", &config->tls_verify_clients);
  }
  if (root.contains("coordinator")) {
    const toml::value& c = root.at("coordinator");
    if (c.contains("etcd")) {
      const toml::value& e = c.at("etcd");
      if (!e.is_array()) Fail(source, e, "coordinator.etcd", "must be a list of \"host:port\"");
      for (const toml::value& v : e.as_array()) {
        net::HostPort hp;
        std::string why;
        if (!v.is_string() || !net::ParseHostPort(v.as_string().str, &hp, &why)) {
          Fail(source, v, "coordinator.etcd", "each entry must be a \"host:port\" string");
        }
        config->etcd.push_back(v.as_string().str);
      }
    }
    Optional(source, c, "coordinator", "prefix", &config->etcd_prefix);
    if (config->etcd_prefix.empty() || config->etcd_prefix[0] != '/') {
      Fail(source, c.at("prefix"), "coordinator.prefix", "must start with /");
    }
    config->lease_ttl_ms =
        OptionalCount(source, c, "coordinator", "lease_ttl_ms", config->lease_ttl_ms, 1000);
    config->max_lag_records =
        OptionalCount(source, c, "coordinator", "max_lag_records", config->max_lag_records, 0);
    OptionalChoice(source, c, "coordinator", "primary_reads", {{"lease", true}, {"always", false}},
                   &config->primary_reads_need_lease);
  }
  if (!root.contains("shards") || !root.at("shards").is_array() ||
      root.at("shards").as_array().empty()) {
    Fail(source, root, "shards", "at least one [[shards]] entry is required");
  }
  size_t i = 0;
  const size_t count = root.at("shards").as_array().size();
  for (const auto& t : root.at("shards").as_array())
    config->shards.push_back(ParseShard(source, t, i++, count));
  Validate(source, root, config);
}

bool ParseText(const std::string& text, const std::string& name, ClusterConfig* config,
               std::string* error) {
  try {
    const toml::value root = ParseToml(text, name);
    ClusterConfig parsed;
    ParseRoot(name, root, &parsed);
    *config = std::move(parsed);
    return true;
  } catch (const ConfigError& e) {
    *error = e.message;
  } catch (const toml::syntax_error& e) {
    *error = TomlSyntaxError(name, e.what());
  } catch (const std::exception& e) {
    *error = TomlSyntaxError(name, e.what());
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
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    *error = path + ": cannot be read";
    return false;
  }
  return ParseText(text, path, config, error);
}

bool ParseConfig(const std::string& text, const std::string& name, ClusterConfig* config,
                 std::string* error) {
  return ParseText(text, name, config, error);
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
