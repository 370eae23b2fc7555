#include "src/cluster/cluster_map.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <toml.hpp>

#include "src/cluster/toml_text.h"
#include "storage/number.h"

namespace distkv {
namespace {

// Sorted, merged ranges.
std::vector<SlotRange> Normalize(std::vector<SlotRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const SlotRange& a, const SlotRange& b) { return a.first < b.first; });
  std::vector<SlotRange> out;
  for (const SlotRange& r : ranges) {
    if (!out.empty() && r.first <= out.back().last + 1) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

// ranges without the slots of cut.
std::vector<SlotRange> Subtract(const std::vector<SlotRange>& ranges, SlotRange cut) {
  std::vector<SlotRange> out;
  for (const SlotRange& r : ranges) {
    if (r.last < cut.first || r.first > cut.last) {
      out.push_back(r);
      continue;
    }
    if (r.first < cut.first) out.push_back(SlotRange{r.first, cut.first - 1});
    if (r.last > cut.last) out.push_back(SlotRange{cut.last + 1, r.last});
  }
  return out;
}

std::string RangeText(SlotRange r) {
  return std::to_string(r.first) + "-" + std::to_string(r.last);
}

// A TOML basic string.
void AppendTomlString(std::string* out, const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  *out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      *out += "\\u00";
      *out += kHex[c >> 4];
      *out += kHex[c & 15];
    } else {
      *out += static_cast<char>(c);
    }
  }
  *out += '"';
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool DecodeMigrations(const std::string& header, const std::string& source,
                      std::vector<Migration>* out, std::string* error) {
  if (header.find_first_not_of(" \t\r\n") == std::string::npos) return true;
  try {
    std::istringstream in(header);
    const toml::value root = toml::parse(in, source);
    for (const auto& [key, value] : root.as_table()) {
      if (key != "migrations") throw std::runtime_error("unknown key \"" + key + "\"");
    }
    for (const toml::value& v : toml::find<toml::array>(root, "migrations")) {
      Migration m;
      m.id = static_cast<uint64_t>(toml::find<int64_t>(v, "id"));
      const std::string range = toml::find<std::string>(v, "slots");
      unsigned first = 0, last = 0;
      char dash = 0;
      std::istringstream r(range);
      if (!(r >> first >> dash >> last) || dash != '-' || first > last || last >= kSlotCount) {
        throw std::runtime_error("bad slot range \"" + range + "\"");
      }
      m.slots = SlotRange{first, last};
      m.source = toml::find<std::string>(v, "source");
      m.target = toml::find<std::string>(v, "target");
      m.state = toml::find<std::string>(v, "state");
      out->push_back(std::move(m));
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    *error = source + ": migrations: " + what.substr(0, what.find('\n'));
    return false;
  }
  return true;
}

}  // namespace

std::string EncodeClusterMap(const ClusterMap& map) {
  std::string out = "epoch = " + std::to_string(map.epoch) + "\n";
  if (!map.migrations.empty()) {
    out += "migrations = [";
    for (size_t i = 0; i < map.migrations.size(); ++i) {
      const Migration& m = map.migrations[i];
      out += i ? ", " : "";
      out +=
          "{id = " + std::to_string(m.id) + ", slots = \"" + RangeText(m.slots) + "\", source = ";
      AppendTomlString(&out, m.source);
      out += ", target = ";
      AppendTomlString(&out, m.target);
      out += ", state = ";
      AppendTomlString(&out, m.state);
      out += "}";
    }
    out += "]\n";
  }
  for (const ShardConfig& s : map.shards) {
    out += "\n[[shards]]\nname = ";
    AppendTomlString(&out, s.name);
    out += "\nidx = " + std::to_string(s.idx) + "\naddress = ";
    AppendTomlString(&out, s.address);
    out += "\nreplicas = [";
    for (size_t i = 0; i < s.replicas.size(); ++i) {
      if (i) out += ", ";
      AppendTomlString(&out, s.replicas[i]);
    }
    out += "]\nslots = [";
    for (size_t i = 0; i < s.slots.size(); ++i) {
      if (i) out += ", ";
      out += "[" + std::to_string(s.slots[i].first) + ", " + std::to_string(s.slots[i].last) + "]";
    }
    out += "]\n";
  }
  return out;
}

bool DecodeClusterMap(const std::string& text, const std::string& source, ClusterMap* map,
                      std::string* error) {
  if (!CheckTomlText(text, source, error)) return false;
  // The first line is the epoch; the rest is [[shards]] entries as in a config.
  const size_t eol = text.find('\n');
  const std::string first = text.substr(0, eol);
  const std::string prefix = "epoch = ";
  uint64_t epoch = 0;
  if (first.compare(0, prefix.size(), prefix) != 0 ||
      !storage::ParseUint(std::string_view(first).substr(prefix.size()), 10, &epoch)) {
    *error = source + ":1: a cluster map starts with \"epoch = <number>\" (at most 2^64-1)";
    return false;
  }
  // The header (epoch, migrations) ends where the first table begins. Keep
  // line numbers right in the config loader's messages: empty lines stand in
  // for the header's.
  size_t body = eol == std::string::npos ? text.size() : eol + 1;
  while (body < text.size() && text[body] != '[') {
    const size_t next = text.find('\n', body);
    body = next == std::string::npos ? text.size() : next + 1;
  }
  const std::string header = eol == std::string::npos ? "" : text.substr(eol + 1, body - eol - 1);
  const size_t header_lines =
      static_cast<size_t>(std::count(text.begin(), text.begin() + body, '\n'));
  const std::string rest = std::string(header_lines, '\n') + text.substr(body);
  std::vector<Migration> migrations;
  if (!DecodeMigrations(header, source, &migrations, error)) return false;
  ClusterConfig config;
  if (!ParseConfig(rest, source, &config, error)) return false;
  map->epoch = epoch;
  map->shards = std::move(config.shards);
  map->migrations = std::move(migrations);
  for (const Migration& m : map->migrations) {
    if (FindShard(*map, m.source) < 0 || FindShard(*map, m.target) < 0 || m.source == m.target) {
      *error = source + ": migration " + std::to_string(m.id) + " names unknown shards";
      return false;
    }
  }
  return true;
}

int FindShard(const ClusterMap& map, const std::string& name) {
  for (size_t i = 0; i < map.shards.size(); ++i) {
    if (map.shards[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

const Migration* MigrationOfSlot(const ClusterMap& map, uint32_t slot) {
  for (const Migration& m : map.migrations) {
    if (slot >= m.slots.first && slot <= m.slots.last) return &m;
  }
  return nullptr;
}

bool OwnsSlot(const ShardConfig& shard, uint32_t slot) {
  for (const SlotRange& r : shard.slots) {
    if (slot >= r.first && slot <= r.last) return true;
  }
  return false;
}

bool StartedMigrationMap(const ClusterMap& current, SlotRange slots, const std::string& target,
                         ClusterMap* out, std::string* error) {
  if (slots.first > slots.last || slots.last >= kSlotCount) {
    *error =
        "slot range " + RangeText(slots) + " is not within 0-" + std::to_string(kSlotCount - 1);
    return false;
  }
  const int t = FindShard(current, target);
  if (t < 0) {
    *error = "no shard named \"" + target + "\"";
    return false;
  }
  if (!current.migrations.empty()) {
    // One at a time: a source pauses one range at its cutover, a target
    // imports one range, and a rebalance moves one range after the other.
    const Migration& m = current.migrations.front();
    *error = "migration " + std::to_string(m.id) + " of slots " + RangeText(m.slots) + " (" +
             m.source + " -> " + m.target +
             ") is running; one migration at a time: run this again once it has finished";
    return false;
  }
  int source = -1;
  for (uint32_t slot = slots.first; slot <= slots.last; ++slot) {
    if (const Migration* m = MigrationOfSlot(current, slot)) {
      *error = "slot " + std::to_string(slot) + " is already moving (migration " +
               std::to_string(m->id) + ", " + m->source + " -> " + m->target + ")";
      return false;
    }
    int owner = -1;
    for (size_t i = 0; i < current.shards.size(); ++i) {
      if (OwnsSlot(current.shards[i], slot)) owner = static_cast<int>(i);
    }
    if (owner == t) {
      *error = "slot " + std::to_string(slot) + " already belongs to " + target;
      return false;
    }
    if (source >= 0 && owner != source) {
      *error = "slots " + RangeText(slots) + " belong to more than one shard (" +
               current.shards[source].name + ", " + current.shards[owner].name +
               "); move each shard's part on its own";
      return false;
    }
    source = owner;
  }
  ClusterMap next = current;
  next.epoch = current.epoch + 1;
  Migration m;
  m.id = next.epoch;
  m.slots = slots;
  m.source = current.shards[source].name;
  m.target = target;
  next.migrations.push_back(m);
  *out = std::move(next);
  return true;
}

bool FinishedMigrationMap(const ClusterMap& current, uint64_t id, bool commit, ClusterMap* out,
                          std::string* error) {
  ClusterMap next = current;
  auto m = std::find_if(next.migrations.begin(), next.migrations.end(),
                        [&](const Migration& x) { return x.id == id; });
  if (m == next.migrations.end()) {
    *error = "no migration " + std::to_string(id) + " in the map of epoch " +
             std::to_string(current.epoch);
    return false;
  }
  if (commit) {
    for (ShardConfig& s : next.shards) {
      if (s.name == m->source) s.slots = Subtract(s.slots, m->slots);
      if (s.name == m->target) {
        s.slots.push_back(m->slots);
        s.slots = Normalize(s.slots);
      }
      s.owns_nothing = s.slots.empty();
    }
  }
  next.migrations.erase(m);
  next.epoch = current.epoch + 1;
  *out = std::move(next);
  return true;
}

bool AddedShardMap(const ClusterMap& current, const ShardConfig& shard, ClusterMap* out,
                   std::string* error) {
  for (const ShardConfig& s : current.shards) {
    if (s.name == shard.name || s.idx == shard.idx) {
      *error = "the map already has a shard named \"" + shard.name + "\" or with idx " +
               std::to_string(shard.idx);
      return false;
    }
  }
  if (static_cast<size_t>(shard.idx) != current.shards.size()) {
    *error = "a new shard takes the next idx, " + std::to_string(current.shards.size());
    return false;
  }
  ClusterMap next = current;
  ShardConfig added = shard;
  added.slots.clear();
  added.owns_nothing = true;
  next.shards.push_back(added);
  next.epoch = current.epoch + 1;
  *out = std::move(next);
  return true;
}

bool PromotedMap(const ClusterMap& current, const std::string& shard, const std::string& replica,
                 ClusterMap* out, std::string* error) {
  ClusterMap next = current;
  auto s = std::find_if(next.shards.begin(), next.shards.end(),
                        [&](const ShardConfig& c) { return c.name == shard; });
  if (s == next.shards.end()) {
    *error = "no shard named \"" + shard + "\"";
    return false;
  }
  auto r = std::find(s->replicas.begin(), s->replicas.end(), replica);
  if (r == s->replicas.end()) {
    *error = replica + " is not a replica of shard " + shard;
    return false;
  }
  *r = s->address;  // the old primary takes the promoted replica's place
  s->address = replica;
  next.epoch = current.epoch + 1;
  *out = std::move(next);
  return true;
}

bool FindNode(const ClusterMap& map, const std::string& address, size_t* shard, bool* primary) {
  for (size_t i = 0; i < map.shards.size(); ++i) {
    const ShardConfig& s = map.shards[i];
    if (s.address == address) {
      *shard = i;
      *primary = true;
      return true;
    }
    if (std::find(s.replicas.begin(), s.replicas.end(), address) != s.replicas.end()) {
      *shard = i;
      *primary = false;
      return true;
    }
  }
  return false;
}

bool SaveClusterMap(const std::string& dir, const ClusterMap& map, std::string* error) {
  return WriteFileAtomically(dir, kClusterMapFile, EncodeClusterMap(map), error);
}

bool WriteFileAtomically(const std::string& dir, const std::string& name, const std::string& text,
                         std::string* error) {
  const std::string path = dir + "/" + name;
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  bool ok = WriteAll(fd, text) && ::fdatasync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok) {
    *error = "cannot write " + tmp + ": " + std::strerror(saved);
    return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot rename " + tmp + ": " + std::strerror(errno);
    return false;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    *error = "cannot sync the directory " + dir + ": " + std::strerror(errno);
    if (dfd >= 0) ::close(dfd);
    return false;
  }
  ::close(dfd);
  return true;
}

bool LoadClusterMap(const std::string& dir, ClusterMap* map, std::string* error) {
  const std::string path = dir + "/" + kClusterMapFile;
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  return DecodeClusterMap(text.str(), path, map, error);
}

}  // namespace distkv
