#include "src/cluster/cluster_map.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace distkv {
namespace {

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

}  // namespace

std::string EncodeClusterMap(const ClusterMap& map) {
  std::string out = "epoch = " + std::to_string(map.epoch) + "\n";
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
  // The first line is the epoch; the rest is [[shards]] entries as in a config.
  const size_t eol = text.find('\n');
  const std::string first = text.substr(0, eol);
  const std::string prefix = "epoch = ";
  if (first.compare(0, prefix.size(), prefix) != 0 || first.size() == prefix.size() ||
      first.size() > prefix.size() + 20 ||
      first.find_first_not_of("0123456789", prefix.size()) != std::string::npos) {
    *error = source + ":1: a cluster map starts with \"epoch = <number>\"";
    return false;
  }
  errno = 0;
  const unsigned long long epoch = std::strtoull(first.c_str() + prefix.size(), nullptr, 10);
  if (errno == ERANGE) {
    *error = source + ":1: epoch out of range";
    return false;
  }
  // Keep line numbers right in the config loader's messages: an empty line
  // stands in for the epoch line.
  const std::string rest = eol == std::string::npos ? "" : "\n" + text.substr(eol + 1);
  ClusterConfig config;
  if (!ParseConfig(rest, source, &config, error)) return false;
  map->epoch = epoch;
  map->shards = std::move(config.shards);
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
