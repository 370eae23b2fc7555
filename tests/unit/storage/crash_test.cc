// Power-loss simulation: a store on a FaultyIo is driven with random writes,
// deletes, segment seals, MANIFEST updates, failed syncs and a full disk,
// and the power is cut at a random call. After each restart:
//   - Open succeeds (a crash is never mistaken for damage);
//   - the store holds exactly the writes up to some LSN R (nothing
//     unacknowledged is half-there, nothing is out of order);
//   - R covers every write acknowledged under fsync = always, and under
//     everysec every write a sync covered (the loss is bounded);
//   - the index equals an independent scan of the files.
// Then the store is written to again and crashed again.
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <random>

#include "storage/faulty_io.h"
#include "storage/record_format.h"
#include "storage/store.h"

using namespace distkv::storage;

namespace {

const std::string kDir = "/db";
std::string g_log;  // the store's log lines of the current life, shown on failure
// Opens that found the newest segment's last write cut with valid records
// after the hole (pre-allocated space written out of order), over all lives.
int g_torn_last_writes = 0;

struct Model {
  struct Write {
    uint64_t lsn;
    std::string key;
    std::optional<std::string> value;  // nullopt: a delete
  };
  std::vector<Write> writes;  // staged and not undone, in LSN order
  uint64_t acked = 0;         // newest LSN whose batch the store said was OK
  uint64_t synced = 0;        // everysec: newest LSN a completed sync covered

  std::map<std::string, std::string> State(uint64_t upto) const {
    std::map<std::string, std::string> s;
    for (const Write& w : writes) {
      if (w.lsn > upto) break;
      if (w.value) {
        s[w.key] = *w.value;
      } else {
        s.erase(w.key);
      }
    }
    return s;
  }
  void DropAbove(uint64_t lsn) {
    while (!writes.empty() && writes.back().lsn > lsn) writes.pop_back();
    acked = std::min(acked, lsn);
    synced = std::min(synced, lsn);
  }
};

// key -> (value, lsn), from the segment files alone: the highest LSN of each
// key wins, tombstones remove.
std::map<std::string, std::pair<std::string, uint64_t>> ScanFiles(FaultyIo& io) {
  std::vector<std::string> names;
  REQUIRE(io.ListDir(kDir, &names) == 0);
  std::map<std::string, std::tuple<uint64_t, bool, std::string>> newest;
  for (const std::string& name : names) {
    uint64_t id;
    if (!ParseSegmentFileName(name, &id)) continue;
    std::string_view buf;
    const std::string data = io.Contents(kDir + "/" + name);
    buf = data;
    Record r;
    size_t n;
    while (DecodeRecord(buf, &r, &n).ok()) {
      if (r.type != RecordType::kGap) {
        auto it = newest.find(std::string(r.key));
        if (it == newest.end() || std::get<0>(it->second) < r.lsn) {
          newest[std::string(r.key)] = {r.lsn, r.type == RecordType::kDelete, std::string(r.value)};
        }
      }
      buf.remove_prefix(n);
    }
  }
  std::map<std::string, std::pair<std::string, uint64_t>> out;
  for (const auto& [k, v] : newest) {
    if (!std::get<1>(v)) out[k] = {std::get<2>(v), std::get<0>(v)};
  }
  return out;
}

void CheckRecovered(Store& s, FaultyIo& io, Model* m, FsyncMode mode) {
  const uint64_t r = s.last_lsn();
  INFO(g_log);
  if (mode == FsyncMode::kAlways) {
    REQUIRE_MESSAGE(r >= m->acked, "acknowledged LSN " << m->acked << " lost; log ends at " << r);
  } else {
    REQUIRE_MESSAGE(r >= m->synced, "synced LSN " << m->synced << " lost; log ends at " << r);
  }
  std::map<std::string, std::pair<std::string, uint64_t>> got;
  REQUIRE(s.ForEach([&](std::string_view k, std::string_view v, uint64_t lsn) {
             got[std::string(k)] = {std::string(v), lsn};
           }).ok());
  const std::map<std::string, std::string> want = m->State(r);
  if (got != std::map<std::string, std::pair<std::string, uint64_t>>() &&
      got.size() != want.size()) {
    std::string d = "recovered to LSN " + std::to_string(r) + ":";
    for (const auto& [k, v] : got) d += " " + k + "@" + std::to_string(v.second);
    d += "\nmodel:";
    for (const auto& w : m->writes)
      d += " " + w.key + "@" + std::to_string(w.lsn) + (w.value ? "" : "-del");
    MESSAGE(d);
  }
  REQUIRE(got.size() == want.size());
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    REQUIRE_MESSAGE(it != got.end(), "key " << k << " missing after recovery to LSN " << r);
    REQUIRE_MESSAGE(it->second.first == v, "key " << k << " has a value it never had at LSN " << r);
  }
  REQUIRE(ScanFiles(io) == got);  // the index equals a scan
  m->DropAbove(r);
}

std::unique_ptr<Store> MustOpen(const Options& o) {
  std::unique_ptr<Store> s;
  Status st = Store::Open(o, &s);
  INFO(g_log);
  REQUIRE_MESSAGE(st.ok(), st.ToString());
  return s;
}

// One life of a store: rounds of writing until the power goes, restarting.
void RunLife(FsyncMode mode, uint64_t seed) {
  std::mt19937_64 rng(seed);
  FaultyIo io(seed);
  io.KeepTornWrites(seed % 2 == 0);
  Options o;
  o.dir = kDir;
  o.io = &io;
  o.fsync = mode;
  o.segment_bytes = 300 + rng() % 1500;
  g_log.clear();
  o.log = [](std::string_view line) {
    g_log += std::string(line) + "\n";
    if (line.find("torn last write") != std::string_view::npos) g_torn_last_writes++;
  };
  Model m;
  for (int round = 0; round < 3; round++) {
    CAPTURE(round);
    auto s = MustOpen(o);
    if (round > 0) CheckRecovered(*s, io, &m, mode);
    io.CrashAfter(1 + rng() % 80);
    const int fault = static_cast<int>(rng() % 8);
    if (fault == 0) io.FailSyncAfter(1 + rng() % 6);
    if (fault == 1) io.SetCapacity(1000 + rng() % 4000);
    if (fault == 2) io.ShortWrites(true);
    while (!io.down()) {
      const int n = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < n && s->writable().ok(); i++) {
        const std::string key = "k" + std::to_string(rng() % 12);
        uint64_t lsn = 0;
        if (rng() % 4 == 0) {
          Status st = s->Remove(key, &lsn);
          if (st.ok()) m.writes.push_back({lsn, key, std::nullopt});
        } else {
          std::string value(rng() % 200, static_cast<char>('a' + rng() % 26));
          value += std::to_string(rng());
          REQUIRE(s->Put(key, value, &lsn).ok());
          m.writes.push_back({lsn, key, value});
        }
      }
      if (!s->writable().ok()) {
        io.PowerCut();  // read-only after a failed sync: nothing more to do but restart
        break;
      }
      const bool force = mode == FsyncMode::kEverySec && rng() % 3 == 0;
      auto b = s->TakeBatch(force);
      if (!b) continue;
      g_log +=
          "batch " + std::to_string(b->first_lsn()) + "-" + std::to_string(b->last_lsn()) + "\n";
      Status run = b->Run();
      Status told = s->FinishBatch(std::move(b), run);
      if (io.down()) break;  // nobody hears about a batch the power cut short
      if (run.ok()) {
        m.acked = s->durable_lsn();
        if (force || mode == FsyncMode::kAlways) m.synced = s->durable_lsn();
      } else {
        m.DropAbove(s->last_lsn());  // undone, never to reappear
        if (told.ok()) m.acked = s->durable_lsn();
      }
      if (fault == 1 && rng() % 4 == 0) io.SetCapacity(UINT64_MAX);  // space freed
      // A clean close and reopen in the middle of the round. Not after an
      // injected sync failure: a process that reopens the files in the same
      // boot reads pages the kernel never wrote and whose error it already
      // reported to the old process (see README, Durability).
      if (fault != 0 && rng() % 16 == 0 && !io.down()) {
        s.reset();
        if (io.down()) break;
        Status st = Store::Open(o, &s);
        if (st.IsNoSpace()) {  // the disk is full even for the MANIFEST: free some
          io.SetCapacity(UINT64_MAX);
          st = Store::Open(o, &s);
        }
        if (io.down()) break;  // the power went during the open
        REQUIRE_MESSAGE(st.ok(), st.ToString());
        CheckRecovered(*s, io, &m, mode);
      }
    }
    s.reset();  // the dead process's store: every call fails now
    io.Restart();
    {
      std::vector<std::string> names;
      io.ListDir(kDir, &names);
      g_log += "-- power cut; after reboot:";
      for (auto& n : names)
        g_log += " " + n + "=" + std::to_string(io.Contents(kDir + "/" + n).size());
      g_log += "\n";
    }
    io.SetCapacity(UINT64_MAX);
    io.ShortWrites(false);
  }
  auto s = MustOpen(o);
  CheckRecovered(*s, io, &m, mode);
}

}  // namespace

TEST_CASE("power loss at random moments: fsync=always loses nothing acknowledged") {
  g_torn_last_writes = 0;
  for (uint64_t seed = 1; seed <= 1500; seed++) {
    CAPTURE(seed);
    RunLife(FsyncMode::kAlways, seed);
  }
  // The lives above must have met the case the pre-allocated segment makes
  // possible, or they prove nothing about it.
  MESSAGE(g_torn_last_writes << " opens cut a last write whose sectors reached the disk out of order");
  CHECK(g_torn_last_writes > 0);
}

TEST_CASE("power loss at random moments: everysec loses at most what no sync covered") {
  for (uint64_t seed = 1; seed <= 1000; seed++) {
    CAPTURE(seed);
    RunLife(FsyncMode::kEverySec, seed);
  }
}
