// `distkv reshard` and `distkv rebalance`: the operator's side of slot
// migration.
//
//   distkv reshard   --config FILE --slots A-B --to SHARD [--token T] [--no-progress]
//   distkv rebalance --config FILE [--drain NAME]... [--token T] [--no-progress]
//
// Both read the cluster map from the nodes of the config (the newest epoch
// any of them holds), add the config's shards the map does not have yet
// (owning no slot; the new map is pushed to every node, or with [coordinator]
// etcd written to etcd's map by a compare-and-put), plan the moves from
// the map (src/cluster/rebalance.h) and run them one at a time: POST
// /admin/migrate on the target's primary, then watch it there until the map
// gives the slots to the target. The nodes do the work and keep its state, so
// an interrupted command is resumed by running it again: a migration the map
// still lists is watched to its end first, and the plan then holds only what
// is left.
//
// Progress goes to stderr (src/obs/progress_bar.h): a live bar on a
// terminal, a line per phase and every few seconds elsewhere, none with
// --no-progress; a line per completed move to stderr, the summary to stdout. Exit 0 when every move
// completed, 1 when one was refused or failed, 2 on bad usage, 3 when no node could be reached.
#include "src/node/reshard_command.h"

#include <uv.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "net/http_client.h"
#include "src/cluster/cluster_map.h"
#include "src/cluster/config.h"
#include "src/cluster/etcd_client.h"
#include "src/cluster/migration.h"
#include "src/cluster/rebalance.h"
#include "src/node/admin_caller.h"
#include "src/obs/progress_bar.h"

namespace distkv {
namespace {

constexpr int kPollMs = 200;

std::vector<std::string> NodesOf(const std::vector<ShardConfig>& shards) {
  std::vector<std::string> nodes;
  for (const ShardConfig& s : shards) {
    nodes.push_back(s.address);
    nodes.insert(nodes.end(), s.replicas.begin(), s.replicas.end());
  }
  return nodes;
}

// The member `name` of a JSON object when it is an unsigned number (else 0)
// or a string (else "").
uint64_t JsonNumber(const nlohmann::json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

std::string JsonString(const nlohmann::json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// The entry for slots mv.slots in the array `list` of a target's
// GET /admin/migrate answer ("migrations" or "completed"), or null; the
// last one when the range moved more than once.
nlohmann::json FindMove(const std::string& body, const char* list, SlotRange slots) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  nlohmann::json found;
  if (!j.is_object() || !j.contains(list) || !j[list].is_array()) return found;
  const nlohmann::json range = {slots.first, slots.last};
  for (const nlohmann::json& m : j[list]) {
    if (m.is_object() && m.contains("slots") && m["slots"] == range) found = m;
  }
  return found;
}

class Resharder {
 public:
  Resharder(const ClusterConfig& config, std::string token, ProgressBar::Mode mode)
      : config_(config), caller_(config, std::move(token)), bar_(stderr, mode) {}

  // The newest map any node of the config (or of the map) holds; false when
  // no node answered.
  bool ReadMap() {
    bool any = false;
    std::vector<std::string> nodes = NodesOf(config_.shards);
    for (size_t i = 0; i < nodes.size(); ++i) {
      net::ClientResult r = caller_.Call(nodes[i], "GET", "/internal/cluster-map");
      if (r.error != net::ClientError::kNone || r.response.status != 200) continue;
      ClusterMap m;
      std::string error;
      if (!DecodeClusterMap(r.response.body, nodes[i], &m, &error)) continue;
      if (!any || m.epoch > map_.epoch ||
          (m.epoch == map_.epoch && m.shards.size() > map_.shards.size())) {
        map_ = std::move(m);
      }
      any = true;
      for (const std::string& n : NodesOf(map_.shards)) {
        if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
      }
    }
    return any;
  }

  // The config's shards that the map lacks join it, owning nothing.
  bool AddNewShards() {
    if (!config_.etcd.empty()) return AddNewShardsThroughEtcd();
    for (const ShardConfig& s : config_.shards) {
      if (FindShard(map_, s.name) >= 0) continue;
      ClusterMap next;
      std::string error;
      if (!AddedShardMap(map_, s, &next, &error)) {
        std::fprintf(stderr, "distkv: cannot add shard %s: %s\n", s.name.c_str(), error.c_str());
        return false;
      }
      map_ = std::move(next);
      std::fprintf(stderr, "distkv: shard %s joins the cluster map (epoch %" PRIu64 ")\n",
                   s.name.c_str(), map_.epoch);
      const std::string text = EncodeClusterMap(map_);
      size_t told = 0;
      for (const std::string& n : NodesOf(map_.shards)) {
        net::ClientResult r = caller_.Call(n, "POST", "/internal/cluster-map", text);
        if (r.error == net::ClientError::kNone && r.response.status == 200) told++;
      }
      if (told == 0) {
        std::fprintf(stderr, "distkv: no node took the new map\n");
        return false;
      }
    }
    return true;
  }

  // With [coordinator] etcd the map lives in etcd: the new shards join it by
  // a compare-and-put on its revision, and the nodes adopt it from there.
  bool AddNewShardsThroughEtcd() {
    EtcdClient etcd(caller_.client(), config_.etcd, 10'000);
    const std::string key = config_.etcd_prefix + "/map";
    for (int attempt = 0; attempt < 10; ++attempt) {
      bool done = false, ok = false;
      EtcdKey got;
      etcd.Get(key, [&](bool o, const EtcdKey& k) {
        ok = o;
        got = k;
        done = true;
      });
      caller_.RunUntil(done);
      ClusterMap current;
      std::string error;
      if (!ok || !got.found || !DecodeClusterMap(got.value, "etcd " + key, &current, &error)) {
        std::fprintf(stderr, "distkv: cannot read the cluster map from etcd %s: %s\n",
                     etcd.endpoint().c_str(),
                     !ok         ? etcd.last_error().c_str()
                     : got.found ? error.c_str()
                                 : "no map yet");
        return false;
      }
      ClusterMap next = current;
      std::vector<std::string> added;
      for (const ShardConfig& s : config_.shards) {
        if (FindShard(next, s.name) >= 0) continue;
        if (!AddedShardMap(next, s, &next, &error)) {
          std::fprintf(stderr, "distkv: cannot add shard %s: %s\n", s.name.c_str(), error.c_str());
          return false;
        }
        added.push_back(s.name);
      }
      if (added.empty()) {
        map_ = std::move(current);
        return true;
      }
      done = false;
      bool succeeded = false;
      etcd.PutIfModRevision(key, got.mod_revision, EncodeClusterMap(next), [&](bool o, bool s) {
        ok = o;
        succeeded = s;
        done = true;
      });
      caller_.RunUntil(done);
      if (!ok) {
        std::fprintf(stderr, "distkv: etcd did not answer the new map (%s); run this again\n",
                     etcd.last_error().c_str());
        return false;
      }
      if (!succeeded) continue;  // the map moved meanwhile: read it again
      map_ = std::move(next);
      for (const std::string& name : added) {
        std::fprintf(stderr, "distkv: shard %s joins the cluster map in etcd (epoch %" PRIu64 ")\n",
                     name.c_str(), map_.epoch);
      }
      return true;
    }
    std::fprintf(stderr, "distkv: the cluster map in etcd kept changing; run this again\n");
    return false;
  }

  // Runs the moves one at a time, re-planning from the map after each.
  int Run(const std::function<std::vector<SlotMove>(const ClusterMap&)>& plan) {
    if (!ReadMap()) {
      std::fprintf(stderr, "distkv: no node of %s answered\n", config_.source.c_str());
      return 3;
    }
    if (!AddNewShards()) return 1;
    // A migration left by an interrupted run finishes first.
    while (!map_.migrations.empty()) {
      const Migration m = map_.migrations.front();
      if (int rc = Move(SlotMove{m.slots, m.source, m.target}); rc != 0) return rc;
    }
    const std::vector<SlotMove> moves = plan(map_);
    for (const SlotMove& mv : moves) total_slots_ += mv.slots.last - mv.slots.first + 1;
    if (moves.empty()) {
      std::printf("nothing to move: the map of epoch %" PRIu64 " is already as asked\n",
                  map_.epoch);
      return 0;
    }
    for (const SlotMove& mv : moves) {
      if (int rc = Move(mv); rc != 0) return rc;
    }
    bar_.Clear();
    std::printf("moved %" PRIu64 " slots in %zu migration(s): %" PRIu64 " keys, %s; epoch %" PRIu64
                "\n",
                done_slots_, moves.size(), keys_, HumanBytes(bytes_).c_str(), map_.epoch);
    return 0;
  }

 private:
  int Move(const SlotMove& mv) {
    const int t = FindShard(map_, mv.target);
    if (t < 0) {
      std::fprintf(stderr, "distkv: the map has no shard %s\n", mv.target.c_str());
      return 1;
    }
    const std::string target = map_.shards[t].address;
    const std::string slots = std::to_string(mv.slots.first) + "-" + std::to_string(mv.slots.last);
    net::ClientResult r = caller_.Call(target, "POST", "/admin/migrate?slots=" + slots);
    if (r.error != net::ClientError::kNone) {
      std::fprintf(stderr, "distkv: %s (%s): %s\n", target.c_str(), mv.target.c_str(),
                   r.detail.c_str());
      return 3;
    }
    if (r.response.status != 200 && r.response.status != 202) {
      std::fprintf(stderr, "distkv: %s refused slots %s: %d %s", mv.target.c_str(), slots.c_str(),
                   r.response.status, r.response.body.c_str());
      return 1;
    }
    const auto started = std::chrono::steady_clock::now();
    std::string phase = "started";
    Show(mv, phase, 0, 0, 0, true);
    uint64_t keys = 0, bytes = 0, pause_us = 0;
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
      r = caller_.Call(target, "GET", "/admin/migrate");
      if (r.error != net::ClientError::kNone || r.response.status != 200) continue;  // restarting
      const nlohmann::json running = FindMove(r.response.body, "migrations", mv.slots);
      if (running.is_null()) break;
      keys = JsonNumber(running, "keys_moved");
      bytes = JsonNumber(running, "bytes_moved");
      const std::string now_phase = JsonString(running, "phase");
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      Show(mv, now_phase, keys, bytes, elapsed, now_phase != phase);
      phase = now_phase;
    }
    // Gone from the target's map: did the slots move, or was it rolled back?
    // The target's record of it has the final figures.
    r = caller_.Call(target, "GET", "/admin/migrate");
    if (r.error == net::ClientError::kNone && r.response.status == 200) {
      const nlohmann::json done = FindMove(r.response.body, "completed", mv.slots);
      if (!done.is_null()) {
        keys = JsonNumber(done, "keys_moved");
        bytes = JsonNumber(done, "bytes_moved");
        pause_us = JsonNumber(done, "pause_us");
      }
    }
    ReadMap();
    const int owner_now = FindShard(map_, mv.target);
    if (owner_now < 0 || !OwnsSlot(map_.shards[owner_now], mv.slots.first)) {
      bar_.Clear();
      std::fprintf(stderr, "distkv: migration of slots %s to %s ended without moving them\n",
                   slots.c_str(), mv.target.c_str());
      return 1;
    }
    done_slots_ += mv.slots.last - mv.slots.first + 1;
    keys_ += keys;
    bytes_ += bytes;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char line[256];
    std::snprintf(line, sizeof line,
                  "slots %s %s -> %s: done, %" PRIu64 " keys, %s in %.1f s (writes paused %.1f ms)",
                  slots.c_str(), mv.source.c_str(), mv.target.c_str(), keys,
                  HumanBytes(bytes).c_str(), elapsed, static_cast<double>(pause_us) / 1000);
    bar_.Done(line);
    return 0;
  }

  // The share is of the slots of the whole run (moves before this one
  // count as done).
  void Show(const SlotMove& mv, const std::string& phase, uint64_t keys, uint64_t bytes,
            double elapsed, bool changed) {
    const double share =
        total_slots_ ? static_cast<double>(done_slots_) / static_cast<double>(total_slots_) : 0;
    char line[256];
    std::snprintf(line, sizeof line, "slots %u-%u %s -> %s: %s, %" PRIu64 " keys, %s, %.0f s",
                  mv.slots.first, mv.slots.last, mv.source.c_str(), mv.target.c_str(),
                  phase.c_str(), keys, HumanBytes(bytes).c_str(), elapsed);
    bar_.Show(share, line, changed);
  }

  const ClusterConfig& config_;
  AdminCaller caller_;
  ProgressBar bar_;
  ClusterMap map_;
  uint64_t total_slots_ = 0, done_slots_ = 0, keys_ = 0, bytes_ = 0;
};

int Usage(const char* problem) {
  std::fprintf(
      stderr,
      "distkv: %s\n"
      "usage: distkv reshard --config FILE --slots A-B --to SHARD [--token T]\n"
      "                      [--no-progress]\n"
      "       distkv rebalance --config FILE [--drain NAME]... [--token T] [--no-progress]\n",
      problem);
  return 2;
}

}  // namespace

int ReshardCommand(int argc, char** argv) {
  const bool rebalance = std::strcmp(argv[1], "rebalance") == 0;
  std::string path = "sharding.toml", slots_text, to, token;
  if (const char* t = std::getenv("DISTKV_TOKEN")) token = t;
  std::vector<std::string> drain;
  bool no_progress = false;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    if ((flag == "--config" || flag == "--config-file") && has_value) {
      path = argv[++i];
    } else if (flag == "--token" && has_value) {
      token = argv[++i];
    } else if (flag == "--no-progress") {
      no_progress = true;
    } else if (!rebalance && flag == "--slots" && has_value) {
      slots_text = argv[++i];
    } else if (!rebalance && flag == "--to" && has_value) {
      to = argv[++i];
    } else if (rebalance && flag == "--drain" && has_value) {
      drain.push_back(argv[++i]);
    } else {
      return Usage(("unknown flag " + flag).c_str());
    }
  }
  SlotRange slots;
  if (!rebalance && (to.empty() || !ParseSlotRangeText(slots_text, &slots))) {
    return Usage("reshard needs --slots A-B (0 <= A <= B < 16384) and --to SHARD");
  }
  ClusterConfig config;
  std::string error;
  if (!LoadConfig(path, &config, &error)) {
    std::fprintf(stderr, "distkv: bad config: %s\n", error.c_str());
    return 1;
  }
  Resharder r(config, AdminToken(config, token), ProgressBar::ModeFor(stderr, no_progress));
  if (rebalance) {
    return r.Run([&](const ClusterMap& map) { return PlanRebalance(map, drain); });
  }
  return r.Run([&](const ClusterMap& map) {
    if (FindShard(map, to) < 0) {
      std::fprintf(stderr, "distkv: the cluster map has no shard %s\n", to.c_str());
    }
    return PlanReshard(map, slots, to);
  });
}

}  // namespace distkv
