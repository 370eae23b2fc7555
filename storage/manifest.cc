// MANIFEST encoding, decoding and atomic replacement; the format is in
// manifest.h.
#include "storage/manifest.h"

#include <errno.h>

#include <cinttypes>
#include <cstdio>
#include <random>

#include "storage/crc32c.h"
#include "storage/file_util.h"
#include "storage/number.h"

namespace distkv::storage {

namespace {

constexpr std::string_view kMagic = "distkv-manifest";
constexpr uint64_t kVersion = 1;
constexpr size_t kMaxManifestBytes = 1 << 20;

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return buf;
}

std::string Hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08" PRIx32, v);
  return buf;
}

std::vector<std::string_view> Split(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= line.size()) {
    size_t sp = line.find(' ', pos);
    if (sp == std::string_view::npos) sp = line.size();
    out.push_back(line.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return out;
}

Status Bad(size_t line_no, std::string_view what) {
  return Status::Corruption("MANIFEST line " + std::to_string(line_no) + ": " + std::string(what));
}

}  // namespace

std::string EncodeManifest(const Manifest& m) {
  std::string s;
  s += std::string(kMagic) + " " + std::to_string(kVersion) + "\n";
  s += m.clean ? "state closed\n" : "state open " + std::string(FsyncModeName(m.open_mode)) + "\n";
  s += "high_water " + std::to_string(m.high_water) + "\n";
  s += "log_start " + std::to_string(m.log_start) + "\n";
  s += "tombstone_horizon " + std::to_string(m.tombstone_horizon) + "\n";
  s += "active_segment " + std::to_string(m.active_segment) + " " +
       std::to_string(m.active_first_lsn) + "\n";
  for (const HistoryEntry& h : m.histories) {
    s += "history " + Hex64(h.id) + " " + std::to_string(h.start_lsn) + " " +
         std::to_string(h.prev_end_lsn) + "\n";
  }
  for (const LsnGap& g : m.gaps) {
    s += "gap " + std::to_string(g.first) + " " + std::to_string(g.last) + "\n";
  }
  for (const CompactedSegment& c : m.compacted) {
    s += "compacted " + std::to_string(c.id) + " " + std::to_string(c.min_lsn) + " " +
         std::to_string(c.max_lsn) + "\n";
  }
  for (uint32_t id : m.reserved) s += "reserved " + std::to_string(id) + "\n";
  for (uint32_t id : m.obsolete) s += "obsolete " + std::to_string(id) + "\n";
  s += "crc " + Hex32(crc32c::Value(s)) + "\n";
  return s;
}

Status DecodeManifest(std::string_view text, Manifest* out) {
  if (text.empty() || text.back() != '\n') return Status::Corruption("MANIFEST is cut short");
  // The crc line covers everything before it.
  const size_t crc_line = text.rfind('\n', text.size() - 2);
  if (crc_line == std::string_view::npos) return Status::Corruption("MANIFEST has no crc line");
  const std::string_view body = text.substr(0, crc_line + 1);
  {
    std::vector<std::string_view> f = Split(text.substr(crc_line + 1, text.size() - crc_line - 2));
    uint64_t crc;
    if (f.size() != 2 || f[0] != "crc" || f[1].size() != 8 || !ParseUint(f[1], 16, &crc)) {
      return Status::Corruption("MANIFEST does not end with its crc line");
    }
    if (crc != crc32c::Value(body)) return Status::Corruption("MANIFEST CRC mismatch");
  }

  Manifest m;
  m.histories.clear();
  bool seen_state = false, seen_hw = false, seen_start = false, seen_horizon = false,
       seen_active = false;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t nl = body.find('\n', pos);
    const std::string_view line = body.substr(pos, nl - pos);
    pos = nl + 1;
    line_no++;
    std::vector<std::string_view> f = Split(line);
    uint64_t a = 0, b = 0, c = 0;
    auto nums = [&](size_t n, int base0 = 10) {
      if (f.size() != n + 1) return false;
      if (n >= 1 && !ParseUint(f[1], base0, &a)) return false;
      if (n >= 2 && !ParseUint(f[2], 10, &b)) return false;
      if (n >= 3 && !ParseUint(f[3], 10, &c)) return false;
      return true;
    };
    if (line_no == 1) {
      if (f.size() != 2 || f[0] != kMagic) return Bad(line_no, "not a distkv MANIFEST");
      if (!ParseUint(f[1], 10, &a) || a != kVersion) {
        return Bad(line_no, "format version " + std::string(f[1]) +
                                " is not 1 (written by another version of distkv?)");
      }
      continue;
    }
    const std::string_view name = f[0];
    // A field of one value appears once: this code never writes one twice,
    // and reading the last of two would drop what the first said.
    const bool* seen = name == "state"               ? &seen_state
                       : name == "high_water"        ? &seen_hw
                       : name == "log_start"         ? &seen_start
                       : name == "tombstone_horizon" ? &seen_horizon
                       : name == "active_segment"    ? &seen_active
                                                     : nullptr;
    if (seen != nullptr && *seen) return Bad(line_no, "repeated " + std::string(name));
    if (name == "state") {
      if (f.size() == 2 && f[1] == "closed") {
        m.clean = true;
      } else if (f.size() == 3 && f[1] == "open" && ParseFsyncMode(f[2], &m.open_mode)) {
        m.clean = false;
      } else {
        return Bad(line_no, "bad state");
      }
      seen_state = true;
    } else if (name == "high_water") {
      if (!nums(1)) return Bad(line_no, "bad high_water");
      m.high_water = a;
      seen_hw = true;
    } else if (name == "log_start") {
      if (!nums(1) || a == 0) return Bad(line_no, "bad log_start");
      m.log_start = a;
      seen_start = true;
    } else if (name == "tombstone_horizon") {
      if (!nums(1)) return Bad(line_no, "bad tombstone_horizon");
      m.tombstone_horizon = a;
      seen_horizon = true;
    } else if (name == "active_segment") {
      if (!nums(2) || a > UINT32_MAX) return Bad(line_no, "bad active_segment");
      m.active_segment = static_cast<uint32_t>(a);
      m.active_first_lsn = b;
      seen_active = true;
    } else if (name == "history") {
      if (!nums(3, 16) || f[1].size() != 16 || a == 0) return Bad(line_no, "bad history");
      m.histories.push_back(HistoryEntry{a, b, c});
    } else if (name == "gap") {
      if (!nums(2) || a == 0 || b < a) return Bad(line_no, "bad gap");
      m.gaps.push_back(LsnGap{a, b});
    } else if (name == "compacted") {
      if (!nums(3) || a == 0 || a > UINT32_MAX || c < b) return Bad(line_no, "bad compacted");
      m.compacted.push_back(CompactedSegment{static_cast<uint32_t>(a), b, c});
    } else if (name == "reserved" || name == "obsolete") {
      if (!nums(1) || a == 0 || a > UINT32_MAX) return Bad(line_no, "bad " + std::string(name));
      (name == "reserved" ? m.reserved : m.obsolete).push_back(static_cast<uint32_t>(a));
    } else {
      return Bad(line_no, "unknown field \"" + std::string(name.substr(0, 40)) + "\"");
    }
  }
  if (!seen_state || !seen_hw || !seen_start || !seen_horizon || !seen_active ||
      m.histories.empty()) {
    return Status::Corruption("MANIFEST lacks a required field");
  }
  // Compaction drops tombstones only from segments it then moves log_start
  // past; a horizon at or above log_start would have recovery take an LSN
  // the log does not hold for its last one.
  if (m.tombstone_horizon >= m.log_start) {
    return Status::Corruption("MANIFEST's tombstone_horizon " +
                              std::to_string(m.tombstone_horizon) + " is not below its log_start " +
                              std::to_string(m.log_start));
  }
  // Compaction's outputs hold records of the segments it moved log_start
  // past, never one at or above it.
  for (const CompactedSegment& c : m.compacted) {
    if (c.max_lsn >= m.log_start) {
      return Status::Corruption("MANIFEST's compacted segment " + std::to_string(c.id) +
                                " reaches LSN " + std::to_string(c.max_lsn) +
                                ", not below its log_start " + std::to_string(m.log_start));
    }
  }
  *out = std::move(m);
  return Status::OK();
}

Status ReadManifest(Io* io, const std::string& dir, Manifest* m, bool* found) {
  const std::string path = JoinPath(dir, kManifestFileName);
  int fd;
  if (int err = io->Open(path, Io::kOpenExisting, &fd)) {
    if (err == ENOENT) {
      *found = false;
      return Status::OK();
    }
    return Status::FromErrno(err, "open " + path);
  }
  uint64_t size = 0;
  Status s = FileSize(io, fd, &size, path);
  std::string text;
  if (s.ok() && size > kMaxManifestBytes) s = Status::Corruption(path + " is too large");
  if (s.ok()) {
    text.resize(size);
    s = PreadExact(io, fd, text.data(), size, 0, path);
  }
  io->Close(fd);
  if (s.ok()) s = DecodeManifest(text, m);
  if (!s.ok())
    return Status(s.code() == Status::Code::kCorruption
                      ? Status::Corruption(path + ": " + std::string(s.message()))
                      : s);
  *found = true;
  return Status::OK();
}

Status WriteManifest(Io* io, const std::string& dir, int dir_fd, const Manifest& m,
                     bool* uncertain) {
  return WriteFileAtomically(io, dir, kManifestFileName, EncodeManifest(m), dir_fd, uncertain);
}

void CopyWriterFields(const Manifest& from, Manifest* to) {
  to->clean = from.clean;
  to->open_mode = from.open_mode;
  to->high_water = from.high_water;
  to->active_segment = from.active_segment;
  to->active_first_lsn = from.active_first_lsn;
  to->histories = from.histories;
  to->gaps = from.gaps;
}

void CopyCompactionFields(const Manifest& from, Manifest* to) {
  to->log_start = from.log_start;
  to->tombstone_horizon = from.tombstone_horizon;
  to->compacted = from.compacted;
  to->reserved = from.reserved;
  to->obsolete = from.obsolete;
}

Status ManifestWriter::Update(const Manifest& from, void (*copy)(const Manifest&, Manifest*),
                              bool* uncertain) {
  std::lock_guard<std::mutex> lock(mu_);
  Manifest next = on_disk_;
  copy(from, &next);
  bool unsure = false;
  Status s = WriteManifest(io_, dir_, dir_fd_, next, &unsure);
  if (uncertain) *uncertain = unsure;
  // After an uncertain write either file may be the one a restart finds;
  // the next write replaces it anyway, so build on the newer one.
  if (s.ok() || unsure) on_disk_ = std::move(next);
  return s;
}

uint64_t NewHistoryId() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return id;
}

}  // namespace distkv::storage
