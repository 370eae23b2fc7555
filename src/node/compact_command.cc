// `distkv compact`: a manual compaction of each shard's primary (or of the
// nodes named), followed to its end.
//
// For each node, one at a time: POST /admin/compact, then GET /stats every
// kPollMs. The node's progress board ("progress": {"compaction": ...}) gives
// the bytes done of the total and the phase, shown on stderr as a bar on a
// terminal and as plain lines elsewhere (src/obs/progress_bar.h); its
// "compaction" counters say when it has ended and whether it failed. A node
// already compacting (409) is not asked again: the running compaction is
// followed instead. The line for each node goes to stdout:
//
//   compaction of Delhi on 127.0.0.2:8080 done: 12 segments (26.6 MB) into 3, 20.1 MB reclaimed in
//   4210 ms
//
// Exit 0 when every compaction completed (or a node had nothing to compact),
// 1 when one failed or was refused, 2 on bad usage, 3 when a node could not
// be reached.
#include "src/node/compact_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "src/node/admin_caller.h"
#include "src/obs/progress_bar.h"

namespace distkv {
namespace {

constexpr int kPollMs = 200;
// A node that stops answering while it compacts is given this long to come
// back (a restart) before the command gives up on it.
constexpr int kUnreachableMs = 30'000;

int Usage(const std::string& problem) {
  std::fprintf(stderr,
               "distkv: %s\n"
               "usage: distkv compact [--config FILE] [--shard NAME]... [--node ADDR]...\n"
               "                      [--token T] [--no-progress]\n"
               "       distkv status [--config FILE] [--wait] [--token T] [--no-progress]\n",
               problem.c_str());
  return 2;
}

bool True(const nlohmann::json& j, const char* name) {
  const auto it = j.find(name);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

// An object member, or an empty object.
nlohmann::json Member(const nlohmann::json& j, const char* name) {
  const auto it = j.find(name);
  return it != j.end() && it->is_object() ? *it : nlohmann::json::object();
}

struct Flags {
  std::string config_path = "sharding.toml";
  std::string token;
  bool no_progress = false;
  bool wait = false;
  std::vector<std::string> shards, nodes;
};

// Returns -1 when fine, else the exit code.
int ParseFlags(int argc, char** argv, bool compact, Flags* f) {
  if (const char* t = std::getenv("DISTKV_TOKEN")) f->token = t;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    if ((flag == "--config" || flag == "--config-file") && has_value) {
      f->config_path = argv[++i];
    } else if (flag == "--token" && has_value) {
      f->token = argv[++i];
    } else if (flag == "--no-progress") {
      f->no_progress = true;
    } else if (compact && flag == "--shard" && has_value) {
      f->shards.push_back(argv[++i]);
    } else if (compact && flag == "--node" && has_value) {
      f->nodes.push_back(argv[++i]);
    } else if (!compact && flag == "--wait") {
      f->wait = true;
    } else {
      return Usage("unknown flag or missing value: " + flag);
    }
  }
  return -1;
}

bool Load(const Flags& f, ClusterConfig* config) {
  std::string error;
  if (LoadConfig(f.config_path, config, &error)) return true;
  std::fprintf(stderr, "distkv: bad config: %s\n", error.c_str());
  return false;
}

struct Target {
  std::string shard;  // "" for a node named with --node
  std::string address;
  std::string Name() const { return shard.empty() ? address : shard + " on " + address; }
};

class Compaction {
 public:
  Compaction(AdminCaller* caller, ProgressBar* bar, Target target)
      : caller_(caller), bar_(bar), t_(std::move(target)) {}

  int Run() {
    nlohmann::json stats;
    if (!Stats(&stats)) {
      std::fprintf(stderr, "distkv: %s: %s\n", t_.Name().c_str(), error_.c_str());
      return 3;
    }
    const nlohmann::json before = Member(stats, "compaction");
    const uint64_t ended_before =
        FieldUnsigned(before, "compactions") + FieldUnsigned(before, "failed");
    const uint64_t failed_before = FieldUnsigned(before, "failed");
    net::ClientResult r = caller_->Call(t_.address, "POST", "/admin/compact");
    if (r.error != net::ClientError::kNone) {
      std::fprintf(stderr, "distkv: %s: %s\n", t_.Name().c_str(), r.detail.c_str());
      return 3;
    }
    const int status = r.response.status;
    if (status == 200) {
      std::printf("compaction of %s: nothing to compact (no sealed segment)\n", t_.Name().c_str());
      return 0;
    }
    if (status == 409) {
      bar_->Done("distkv: a compaction already runs on " + t_.Name() + ": following it");
    } else if (status != 202) {
      std::fprintf(stderr, "distkv: %s refused the compaction: %d %s", t_.Name().c_str(), status,
                   r.response.body.c_str());
      return 1;
    }
    const auto started = std::chrono::steady_clock::now();
    auto unreachable_since = started;
    bool reachable = true;
    std::string phase;
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
      const auto now = std::chrono::steady_clock::now();
      if (!Stats(&stats)) {
        if (reachable) unreachable_since = now;
        reachable = false;
        if (now - unreachable_since > std::chrono::milliseconds(kUnreachableMs)) {
          bar_->Done("distkv: lost " + t_.Name() + " while it compacted: " + error_);
          return 3;
        }
        continue;
      }
      reachable = true;
      const nlohmann::json c = Member(stats, "compaction");
      const nlohmann::json p = Member(Member(stats, "progress"), "compaction");
      const double elapsed = std::chrono::duration<double>(now - started).count();
      if (True(c, "running") || True(p, "running")) {
        char secs[32];
        std::snprintf(secs, sizeof secs, ", %.0f s", elapsed);
        const bool on_board = True(p, "running");
        const std::string line = "compaction of " + t_.Name() + ": " +
                                 (on_board ? ProgressText(p) : std::string("starting")) + secs;
        const std::string now_phase = on_board ? FieldString(p, "detail") : "starting";
        bar_->Show(on_board ? ProgressShare(p) : -1, line, now_phase != phase);
        phase = now_phase;
        continue;
      }
      bar_->Clear();
      const uint64_t ended = FieldUnsigned(c, "compactions") + FieldUnsigned(c, "failed");
      if (ended == ended_before) {
        // The compaction asked for found nothing once it could start.
        std::printf("compaction of %s: nothing to compact\n", t_.Name().c_str());
        return 0;
      }
      const std::string outcome = FieldString(p, "outcome");
      if (FieldUnsigned(c, "failed") > failed_before) {
        std::fprintf(stderr, "distkv: compaction of %s %s\n", t_.Name().c_str(),
                     outcome.empty() ? "failed (its log says why)" : outcome.c_str());
        return 1;
      }
      std::printf("compaction of %s done: %s\n", t_.Name().c_str(), outcome.c_str());
      return 0;
    }
  }

 private:
  bool Stats(nlohmann::json* out) {
    net::ClientResult r = caller_->Call(t_.address, "GET", "/stats");
    if (r.error != net::ClientError::kNone) {
      error_ = r.detail;
      return false;
    }
    if (r.response.status != 200) {
      error_ = "/stats answered " + std::to_string(r.response.status);
      return false;
    }
    *out = nlohmann::json::parse(r.response.body, nullptr, /*allow_exceptions=*/false);
    if (!out->is_object()) {
      error_ = "/stats is not JSON";
      return false;
    }
    return true;
  }

  AdminCaller* caller_;
  ProgressBar* bar_;
  Target t_;
  std::string error_;
};

}  // namespace

int CompactCommand(int argc, char** argv) {
  Flags f;
  if (int rc = ParseFlags(argc, argv, /*compact=*/true, &f); rc >= 0) return rc;
  if (!f.shards.empty() && !f.nodes.empty()) return Usage("give --shard or --node, not both");
  ClusterConfig config;
  if (!Load(f, &config)) return 1;
  AdminCaller caller(config, AdminToken(config, f.token));
  ProgressBar bar(stderr, ProgressBar::ModeFor(stderr, f.no_progress));
  std::vector<Target> targets;
  for (const std::string& n : f.nodes) targets.push_back({"", n});
  if (f.nodes.empty()) {
    // Each shard's primary by the current cluster map (a failover may have
    // moved it away from the config's address).
    nlohmann::json status;
    std::string error;
    if (!FetchClusterStatus(&caller, config, &status, &error)) {
      std::fprintf(stderr, "distkv: no node of %s answered: %s\n", config.source.c_str(),
                   error.c_str());
      return 3;
    }
    for (const nlohmann::json& s : status["shards"]) {
      const std::string name = FieldString(s, "name");
      if (!f.shards.empty() && std::find(f.shards.begin(), f.shards.end(), name) == f.shards.end())
        continue;
      for (const nlohmann::json& n : s["nodes"]) {
        if (FieldString(n, "configured_role") == "primary")
          targets.push_back({name, FieldString(n, "address")});
      }
    }
    for (const std::string& name : f.shards) {
      bool found = false;
      for (const Target& t : targets) found = found || t.shard == name;
      if (!found) {
        std::fprintf(stderr, "distkv: the cluster map has no shard %s\n", name.c_str());
        return 1;
      }
    }
  }
  int worst = 0;
  for (const Target& t : targets) worst = std::max(worst, Compaction(&caller, &bar, t).Run());
  return worst;
}

namespace {

// What --wait looks at in one /cluster/status answer.
struct Survey {
  std::vector<std::string> running;   // a line for each operation running
  double share = -1;                  // of the first one
  std::string first_key;              // "address name detail" of the first one
  std::vector<std::string> down;      // nodes that did not answer
  std::vector<std::string> unlinked;  // replicas not streaming from their primary
  // Operations that ended after since_ms (by the node's clock): key
  // "address name" -> (updated_ms, the line that says how).
  std::map<std::string, std::pair<uint64_t, std::string>> ended;
};

Survey Look(const nlohmann::json& status, uint64_t since_ms) {
  Survey v;
  for (const nlohmann::json& s : status["shards"]) {
    for (const nlohmann::json& n : s["nodes"]) {
      const std::string address = FieldString(n, "address");
      if (!True(n, "up")) {
        v.down.push_back(address);
        continue;
      }
      const nlohmann::json st = Member(n, "stats");
      const nlohmann::json rep = Member(st, "replication");
      if (FieldString(rep, "role") == "replica" && !True(rep, "connected"))
        v.unlinked.push_back(address);
      const nlohmann::json progress = Member(st, "progress");
      for (const auto& [name, entry] : progress.items()) {
        const std::string what = name + " of " + FieldString(s, "name") + " on " + address + ": ";
        if (True(entry, "running")) {
          if (v.running.empty()) {
            v.share = ProgressShare(entry);
            v.first_key = address + " " + name + " " + FieldString(entry, "detail");
          }
          v.running.push_back(what + ProgressText(entry));
        } else if (FieldUnsigned(entry, "updated_ms") > since_ms) {
          v.ended[address + " " + name] = {FieldUnsigned(entry, "updated_ms"),
                                           what + FieldString(entry, "outcome")};
        }
      }
    }
  }
  return v;
}

void PrintStatus(const nlohmann::json& status) {
  std::printf("%-12s %-22s %-8s %-5s %10s  %s\n", "SHARD", "NODE", "ROLE", "STATE", "KEYS",
              "REPLICA LAG / RUNNING");
  for (const nlohmann::json& s : status["shards"]) {
    for (const nlohmann::json& n : s["nodes"]) {
      const nlohmann::json st = Member(n, "stats");
      const bool up = True(n, "up");
      const std::string role = up ? FieldString(st, "role") : FieldString(n, "configured_role");
      std::string notes;
      const nlohmann::json rep = Member(st, "replication");
      if (up && FieldString(rep, "role") == "replica") {
        notes = std::to_string(FieldUnsigned(rep, "lag_records")) + " records, " +
                std::to_string(FieldUnsigned(rep, "lag_ms")) + " ms" +
                (True(rep, "connected") ? "" : " (not streaming)");
      }
      if (!up) notes = FieldString(n, "error");
      const nlohmann::json progress = Member(st, "progress");
      for (const auto& [name, entry] : progress.items()) {
        if (!True(entry, "running")) continue;
        notes += (notes.empty() ? "" : "; ") + name + " " + ProgressText(entry);
      }
      std::printf("%-12s %-22s %-8s %-5s %10s  %s\n", FieldString(s, "name").c_str(),
                  FieldString(n, "address").c_str(), role.c_str(), up ? "up" : "down",
                  up ? std::to_string(FieldUnsigned(st, "keys")).c_str() : "-", notes.c_str());
    }
  }
}

}  // namespace

// `distkv status`: every node's role, state, keys and replica lag, from
// /cluster/status. With --wait it first waits for the cluster to settle: no
// long operation running on any node (snapshot resyncs, compactions, slot
// migrations), every node answering, every replica streaming from its
// primary. Meanwhile a progress line on stderr follows the first operation
// running, and each operation that ends gets a line saying how; then the
// table. A node that does not answer or a replica that does not stream is
// waited for up to kUnreachableMs (a restart, a reconnect). Exit 0; 3 when no
// node answered, or the cluster did not settle.
int StatusCommand(int argc, char** argv) {
  Flags f;
  if (int rc = ParseFlags(argc, argv, /*compact=*/false, &f); rc >= 0) return rc;
  ClusterConfig config;
  if (!Load(f, &config)) return 1;
  AdminCaller caller(config, AdminToken(config, f.token));
  ProgressBar bar(stderr, ProgressBar::ModeFor(stderr, f.no_progress));
  nlohmann::json status;
  std::string error;
  if (!FetchClusterStatus(&caller, config, &status, &error)) {
    std::fprintf(stderr, "distkv: no node of %s answered: %s\n", config.source.c_str(),
                 error.c_str());
    return 3;
  }
  // Operations that end from now on get a line; the nodes' clocks are taken
  // to agree with this one's within a second.
  const uint64_t since_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()) -
      1000;
  std::map<std::string, uint64_t> told;  // "address name" -> updated_ms of the line printed
  std::string shown;
  auto settled_since = std::chrono::steady_clock::now();
  while (f.wait) {
    const Survey v = Look(status, since_ms);
    for (const auto& [key, ended] : v.ended) {
      if (told[key] == ended.first) continue;
      told[key] = ended.first;
      bar.Done(ended.second);
    }
    if (v.running.empty() && v.down.empty() && v.unlinked.empty()) break;
    if (!v.down.empty() || !v.unlinked.empty()) {
      // Down or not linked: restarting, reconnecting, or too busy to answer
      // in time — waited for, within limits.
      if (std::chrono::steady_clock::now() - settled_since >
          std::chrono::milliseconds(kUnreachableMs)) {
        bar.Done("distkv: gave up waiting: " +
                 (v.down.empty() ? "replica " + v.unlinked.front() + " is not streaming"
                                 : v.down.front() + " does not answer") +
                 " after " + std::to_string(kUnreachableMs / 1000) + " s");
        PrintStatus(status);
        return 3;
      }
    } else {
      settled_since = std::chrono::steady_clock::now();
    }
    if (!v.running.empty()) {
      const std::string line =
          v.running.front() +
          (v.running.size() > 1 ? " (+" + std::to_string(v.running.size() - 1) + " more)" : "");
      bar.Show(v.share, line, v.first_key != shown);
      shown = v.first_key;
    } else {
      bar.Show(-1,
               "waiting for " + (v.down.empty() ? "replica " + v.unlinked.front() + " to stream"
                                                : v.down.front() + " to answer"),
               shown != "waiting");
      shown = "waiting";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(4 * kPollMs));
    if (!FetchClusterStatus(&caller, config, &status, &error)) {
      bar.Done("distkv: no node of " + config.source + " answered: " + error);
      return 3;
    }
  }
  bar.Clear();
  PrintStatus(status);
  return 0;
}

}  // namespace distkv
