// The node's side of failover: the cluster map it follows, and its role.
//
// A node starts from sharding.toml (epoch 0), then from the newest map it
// saved in its data directory (cluster_map.toml), then from any newer map a
// peer holds: at start it asks every node of its map, and afterwards one
// node a second, round robin, so a node that was down or cut off during a
// promotion learns the new map within seconds of being able to reach anyone.
// Promotions push the new map to every node at once (POST
// /internal/cluster-map); the poll is the safety net, not the mechanism.
//
// The role follows the map. A node finds its own address in the map: as the
// shard's primary it serves writes and streams its log; as a replica it
// follows whichever address the map names as primary. A switch happens in
// one loop turn, before any other request is looked at:
//   - deposed primary: writes are refused at once (403 naming the new
//     primary); writes already staged still become durable, but their
//     answers say 503 "may or may not have been applied" instead of 2xx, so
//     no write is acknowledged after the node learned it was deposed; the
//     replication streams are ended and the node follows the new primary.
//   - promoted replica: it stops following and starts serving writes and
//     streams; records it applied keep their LSNs, new writes continue after
//     them.
//
// `POST /admin/promote` on a replica is the manual failover. It refuses
// (409) while the primary it follows is reachable and ahead of it, unless
// ?force=true. It builds the map with itself as primary and the old primary
// as a replica under epoch + 1, adopts it, answers, and pushes it.
#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "net/uv_handle.h"
#include "src/cluster/cluster_map.h"
#include "src/node/node.h"
#include "src/obs/log.h"
#include "storage/file_util.h"
#include "storage/io.h"
#include "storage/record_format.h"

namespace distkv {
namespace {

constexpr uint64_t kMapPollIntervalMs = 1'000;
constexpr uint64_t kMapRequestTimeoutMs = 1'000;
constexpr const char* kEpochHeader = "X-Distkv-Epoch";
constexpr const char* kFollowingFile = "following";
// Present while a replica's reads are held (ReadsHeld): a restart keeps them held.
constexpr const char* kReadsHeldFile = "reads_held";

std::string ReadMarker(const std::string& dir, const char* name) {
  std::ifstream in(dir + "/" + name);
  std::string value;
  std::getline(in, value);
  return value;
}

// The top-level member `name` of a /stats answer when it is an unsigned
// number, else 0.
uint64_t StatsNumber(const std::string& body, const char* name) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return 0;
  const auto it = j.find(name);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

}  // namespace

bool Node::InitClusterMap(std::string* error) {
  cluster_map_.epoch = 0;
  cluster_map_.shards = options_.config.shards;
  ClusterMap saved;
  std::string load_error;
  if (LoadClusterMap(options_.data_dir, &saved, &load_error)) {
    // Shards may have been added since the config was written (a rebalance),
    // never removed or moved.
    if (saved.shards.size() < cluster_map_.shards.size() ||
        saved.shards[self_].name != options_.shard) {
      *error = options_.data_dir + "/" + kClusterMapFile +
               " names other shards than the config; remove it if the config is the truth";
      return false;
    }
    if (saved.epoch > 0) {
      Logf(LogLevel::kInfo, "cluster map epoch %" PRIu64 " from %s/%s", saved.epoch,
           options_.data_dir.c_str(), kClusterMapFile);
      SwitchMap(std::move(saved));
    }
  } else if (!load_error.empty()) {
    *error = load_error;
    return false;
  }
  size_t shard = 0;
  bool primary = false;
  if (!FindNode(cluster_map_, advertise_, &shard, &primary)) {
    // Not named in the map (a replica started with --listen elsewhere, or a
    // single node): the command line decides, as before failover existed.
    primary = !options_.replica;
  } else if (shard != self_) {
    *error = "this node's address " + advertise_ + " belongs to shard " +
             cluster_map_.shards[shard].name + " in the cluster map, not " + options_.shard;
    return false;
  } else if (primary == options_.replica && cluster_map_.epoch > 0) {
    Logf(LogLevel::kInfo, "cluster map epoch %" PRIu64 " makes this node the shard's %s",
         cluster_map_.epoch, primary ? "primary" : "replica");
  }
  is_replica_ = !primary;
  primary_unconfirmed_ = primary && !options_.config.etcd.empty();
  following_ = ReadMarker(options_.data_dir, kFollowingFile);
  if (following_.empty() && advertise_ != options_.config.shards[self_].address) {
    // Before any failover a replica follows the primary of the config.
    following_ = options_.config.shards[self_].address;
  }
  // A replica whose log was last its own as primary's, or that was deposed
  // or changed primary and had not been accepted by the new one yet.
  replica_reads_held_ = is_replica_ && (following_ == advertise_ ||
                                        !ReadMarker(options_.data_dir, kReadsHeldFile).empty());
  return true;
}

void Node::SaveMarker(const char* name, const std::string& value) {
  std::string error;
  if (!WriteFileAtomically(options_.data_dir, name, value + "\n", &error)) {
    Logf(LogLevel::kError, "cannot save %s: %s", name, error.c_str());
  }
}

void Node::SwitchMap(ClusterMap map) {
  // In-flight forwards hold references into the old map's shard entries;
  // moving a vector keeps its elements where they are, so the old map lives
  // on in retired_maps_ (a few hundred bytes for each epoch this process saw).
  retired_maps_.push_back(std::move(map_));
  map_ = ShardMap(map.shards);
  cluster_map_ = std::move(map);
}

bool Node::AdoptMap(ClusterMap map, const std::string& from) {
  if (map.epoch <= cluster_map_.epoch) return false;
  if (map.shards.size() < cluster_map_.shards.size() ||
      map.shards[self_].name != cluster_map_.shards[self_].name) {
    Logf(LogLevel::kError,
         "cluster map epoch %" PRIu64
         " from %s does not have this node's shard %s where "
         "expected; ignored",
         map.epoch, from.c_str(), options_.shard.c_str());
    return false;
  }
  std::string error;
  if (!SaveClusterMap(options_.data_dir, map, &error)) {
    // Not adopting keeps a promotion from being forgotten at the next start.
    Logf(LogLevel::kError, "cannot save cluster map epoch %" PRIu64 ": %s", map.epoch,
         error.c_str());
    return false;
  }
  Logf(LogLevel::kInfo, "cluster map epoch %" PRIu64 " -> %" PRIu64 " (from %s)",
       cluster_map_.epoch, map.epoch, from.c_str());
  failover_.maps_adopted++;
  SwitchMap(std::move(map));
  ApplyRole();
  OnMapChangedForMigrations();
  return true;
}

void Node::ApplyRole() {
  size_t shard = 0;
  bool primary = false;
  if (!FindNode(cluster_map_, advertise_, &shard, &primary) || shard != self_) return;
  const std::string& primary_address = cluster_map_.shards[self_].address;
  if (primary && is_replica_) {
    BecomePrimary();
  } else if (!primary && !is_replica_) {
    BecomeReplicaOf(primary_address);
  } else if (!primary && replica_ && replica_->primary() != primary_address) {
    Logf(LogLevel::kInfo, "shard %s: following the new primary %s", options_.shard.c_str(),
         primary_address.c_str());
    HoldReplicaReads("following the new primary " + primary_address);
    FollowPrimary(primary_address);
  }
}

void Node::BecomePrimary() {
  Logf(LogLevel::kInfo,
       "shard %s: this node is now the primary (epoch %" PRIu64 ", LSN %" PRIu64 ")",
       options_.shard.c_str(), cluster_map_.epoch, store_->last_lsn());
  failover_.promotions++;
  events_.Add("promotion", "this node became the primary of " + options_.shard + " (epoch " +
                               std::to_string(cluster_map_.epoch) + ")");
  role_generation_++;
  if (replica_) replica_->Stop();
  replica_.reset();
  is_replica_ = false;
  primary_unconfirmed_ = false;  // promoted by the map of the cluster now
  replica_reads_held_ = false;
  std::remove((options_.data_dir + "/" + kReadsHeldFile).c_str());
  // Records up to here came from the old primary; a node that followed it
  // and holds more is told so when it asks to replicate (history_diverged)
  // and cuts its tail back to this LSN (CutDivergedTail).
  store_->BeginHistory();
  following_ = advertise_;
  SaveMarker(kFollowingFile, following_);
  StartPrimary();
}

void Node::BecomeReplicaOf(const std::string& primary) {
  Logf(LogLevel::kWarn,
       "shard %s: deposed by epoch %" PRIu64 "; writes refused from now on, following %s",
       options_.shard.c_str(), cluster_map_.epoch, primary.c_str());
  failover_.demotions++;
  events_.Add("failover", "deposed by epoch " + std::to_string(cluster_map_.epoch) +
                              "; following the new primary " + primary);
  role_generation_++;
  is_replica_ = true;
  pipeline_->SetDurableListener(nullptr);
  if (primary_) primary_->Stop();
  primary_.reset();
  HoldReplicaReads("deposed by epoch " + std::to_string(cluster_map_.epoch));
  FollowPrimary(primary);
}

void Node::StartPrimary() {
  ReplicationPrimaryOptions po;
  po.shard = options_.shard;
  po.replicas = cluster_map_.shards[self_].replicas;
  po.events = &events_;
  po.stall_timeout_ms = options_.config.stall_timeout_ms;
  po.keep_bytes = options_.config.replica_keep_bytes;
  // Epoch fencing: a replica with a newer map may know this node was
  // deposed; its stream is refused and its map fetched (AdoptMap demotes
  // this node if so).
  po.epoch = [this] { return cluster_map_.epoch; };
  po.on_newer_epoch = [this](const std::string& replica, uint64_t) { FetchMap(replica); };
  primary_ = std::make_unique<ReplicationPrimary>(loop_, store_.get(), po);
  pipeline_->SetDurableListener([this](uint64_t lsn) {
    if (primary_) primary_->OnDurable(lsn);
  });
}

void Node::StartFollowing(const std::string& primary) {
  if (replica_) replica_->Stop();
  // A snapshot of the old stream being installed (InstallSnapshot) is
  // discarded: the new replica runs on the store as it is now, and the new
  // primary decides whether it needs a snapshot of its own.
  role_generation_++;
  const ClusterConfig& config = options_.config;
  ReplicationReplicaOptions ro;
  ro.shard = options_.shard;
  ro.primary = primary;
  ro.self_address = advertise_;
  ro.connect_timeout_ms = config.connect_timeout_ms;
  auth_.AddPeerCredentials(&ro.headers);
  ro.tls = tls_client_;
  ro.cut_tail = [this, primary](uint64_t fork_lsn) { CutDivergedTail(primary, fork_lsn); };
  ro.install_snapshot = [this](uint64_t lsn, ReplicationReplicaOptions::Installed done) {
    InstallSnapshot(lsn, std::move(done));
  };
  ro.progress = &progress_;
  ro.epoch = [this] { return cluster_map_.epoch; };
  // The primary knows a newer map: take it from there now, not at the poll.
  ro.on_newer_epoch = [this, primary](uint64_t) { FetchMap(primary); };
  // A frame holds one slice of records, or one record above the slice size.
  ro.max_frame_bytes =
      (1u << 20) + storage::EncodedRecordSize(config.max_key_bytes, config.max_value_bytes);
  replica_ =
      std::make_unique<ReplicationReplica>(loop_, store_.get(), pipeline_.get(), client_.get(), ro);
  if (server_) replica_->Start();  // else Start() starts it once listening
}

std::vector<std::string> Node::PeerAddresses() const {
  std::vector<std::string> peers;
  for (const ShardConfig& s : cluster_map_.shards) {
    if (s.address != advertise_) peers.push_back(s.address);
    for (const std::string& r : s.replicas) {
      if (r != advertise_) peers.push_back(r);
    }
  }
  return peers;
}

void Node::FetchMap(const std::string& peer) {
  net::OutboundRequest req;
  req.target = "/internal/cluster-map";
  req.timeout_ms = kMapRequestTimeoutMs;
  auth_.AddPeerCredentials(&req.headers);
  req.headers.push_back(net::Header{kEpochHeader, std::to_string(cluster_map_.epoch)});
  std::weak_ptr<bool> alive = alive_;
  control_client_->Request(peer, std::move(req), [this, alive, peer](net::ClientResult& result) {
    if (alive.expired() || result.error != net::ClientError::kNone ||
        result.response.status != 200) {
      return;
    }
    ClusterMap map;
    std::string error;
    if (!DecodeClusterMap(result.response.body, peer + "/internal/cluster-map", &map, &error)) {
      Logf(LogLevel::kError, "cluster map from %s refused: %s", peer.c_str(), error.c_str());
      return;
    }
    AdoptMap(std::move(map), peer);
  });
}

void Node::PushMap() {
  const std::string text = EncodeClusterMap(cluster_map_);
  for (const std::string& peer : PeerAddresses()) {
    net::OutboundRequest req;
    req.method = "POST";
    req.target = "/internal/cluster-map";
    req.timeout_ms = kMapRequestTimeoutMs;
    req.headers.push_back(net::Header{"Content-Type", "application/toml"});
    auth_.AddPeerCredentials(&req.headers);
    req.body = text;
    const uint64_t epoch = cluster_map_.epoch;
    control_client_->Request(peer, std::move(req), [peer, epoch](net::ClientResult& result) {
      if (result.error != net::ClientError::kNone) {
        Logf(LogLevel::kInfo,
             "cluster map epoch %" PRIu64 " not pushed to %s (%s); it learns it when it asks",
             epoch, peer.c_str(), result.detail.c_str());
      }
    });
  }
}

void Node::StartCoordinator() {
  const ClusterConfig& config = options_.config;
  if (config.etcd.empty()) return;
  CoordinatorOptions co;
  co.endpoints = config.etcd;
  co.prefix = config.etcd_prefix;
  co.lease_ttl_ms = config.lease_ttl_ms;
  co.max_lag_records = config.max_lag_records;
  co.shard = options_.shard;
  co.self = advertise_;
  auth_.AddPeerCredentials(&co.peer_headers);
  CoordinatorHooks hooks;
  hooks.map = [this]() -> const ClusterMap& { return cluster_map_; };
  hooks.adopt = [this](ClusterMap map) {
    if (AdoptMap(std::move(map), "etcd") && !is_replica_) PushMap();
  };
  hooks.is_primary = [this] { return !is_replica_; };
  hooks.last_lsn = [this] { return store_->last_lsn(); };
  hooks.lag_records = [this]() -> int64_t {
    if (!replica_ || replica_->primary_lsn() == 0) return -1;
    return static_cast<int64_t>(replica_->lag_records());
  };
  coordinator_ = std::make_unique<Coordinator>(loop_, control_client_.get(), co, std::move(hooks));
  coordinator_->Start();
}

bool Node::WritesFenced(std::string* why) const {
  if (!coordinator_ || coordinator_->WritesAllowed()) return false;
  *why = "the primary of shard " + options_.shard + " cannot confirm its etcd lease (" +
         coordinator_->state() + "), so it may have been replaced: writes are paused until it can";
  return true;
}

void Node::HoldReplicaReads(const std::string& why) {
  replica_reads_held_ = true;
  SaveMarker(kReadsHeldFile, why);
}

bool Node::ReadsHeld(net::HttpResponse* refusal) {
  // A deposed primary's log may end in writes that were never acknowledged
  // and never reached the new primary; it cuts them when the new primary
  // tells it where their histories forked (CutDivergedTail). Serving them
  // before that would show a value the shard never had, and the same node
  // would then read older data. So a replica that was deposed or changed
  // primary serves reads again only once the new primary accepted its
  // stream (ReplicationReplica::shares_history: no fork, or the snapshot
  // that replaced the diverged data is installed); the marker file keeps
  // that across a restart. A replica that was running keeps serving when
  // its primary goes away, and one restarted while following the same
  // primary serves at once.
  if (is_replica_) {
    if (!replica_reads_held_) return false;
    if (replica_ && replica_->shares_history()) {
      replica_reads_held_ = false;
      std::remove((options_.data_dir + "/" + kReadsHeldFile).c_str());
      return false;
    }
    *refusal = net::MakeErrorResponse(
        503, "replica_not_synced",
        "this replica of shard " + options_.shard +
            " was deposed or changed primary, and its new primary " + following_ +
            " has not accepted its log yet, so its data may hold writes the shard never had; "
            "read from the primary, or retry once it has caught up");
    return true;
  }
  // A node that was deposed while it was down still finds itself primary in
  // its saved map; under etcd it serves reads once etcd confirms it.
  if (primary_unconfirmed_ && coordinator_ && coordinator_->confirmed_once()) {
    primary_unconfirmed_ = false;
  }
  if (!primary_unconfirmed_) {
    // A read lease: a primary paused or cut off past its lease may have been
    // replaced, and its successor may have taken writes this node has not
    // seen (a read here would go back in time). Until a renewal succeeds it
    // answers reads as it answers writes (coordinator.h). The time is read
    // now, not at the loop's last tick: a paused node wakes up to a stale tick.
    if (!coordinator_ || !options_.config.primary_reads_need_lease ||
        coordinator_->WritesAllowed()) {
      return false;
    }
    *refusal = net::MakeErrorResponse(
        503, "lease_unconfirmed",
        "this primary of shard " + options_.shard + " cannot confirm its lease with etcd (" +
            coordinator_->state() +
            "): another node may have taken over; retry, or read a replica with ?read=replica");
    return true;
  }
  *refusal = net::MakeErrorResponse(
      503, "primary_unconfirmed",
      "this node started as the primary of shard " + options_.shard +
          " from its saved cluster map, and etcd has not confirmed it yet (" +
          (coordinator_ ? coordinator_->state() : std::string("not asked yet")) +
          "): it may have been replaced while it was down; retry");
  return true;
}

void Node::StartMapPoll() {
  for (const std::string& peer : PeerAddresses()) FetchMap(peer);
  map_timer_ = new uv_timer_t;
  uv_timer_init(loop_, map_timer_);
  map_timer_->data = this;
  uv_timer_start(
      map_timer_,
      [](uv_timer_t* t) {
        Node* node = static_cast<Node*>(t->data);
        std::vector<std::string> peers = node->PeerAddresses();
        if (peers.empty()) return;
        node->FetchMap(peers[node->map_poll_next_++ % peers.size()]);
      },
      kMapPollIntervalMs, kMapPollIntervalMs);
}

void Node::StopMapPoll() {
  if (!map_timer_) return;
  net::CloseAndDelete(map_timer_);
  map_timer_ = nullptr;
}

void Node::HandleClusterMap(net::HttpRequest& request, net::Responder responder,
                            uint64_t start_ns) {
  if (request.method == "POST") {
    ClusterMap map;
    std::string error;
    if (!DecodeClusterMap(request.body, "the pushed cluster map", &map, &error)) {
      Finish(responder, Route::kCluster, start_ns,
             net::MakeErrorResponse(400, "bad_cluster_map", error));
      return;
    }
    const uint64_t epoch = map.epoch;
    AdoptMap(std::move(map), request.peer);
    if (epoch < cluster_map_.epoch) {
      // The sender is behind: it learns from the answer's epoch header and asks.
      net::HttpResponse r =
          net::MakeErrorResponse(409, "stale_epoch",
                                 "this node holds epoch " + std::to_string(cluster_map_.epoch) +
                                     ", newer than the pushed " + std::to_string(epoch));
      r.SetHeader(kEpochHeader, std::to_string(cluster_map_.epoch));
      Finish(responder, Route::kCluster, start_ns, std::move(r));
      return;
    }
  }
  net::HttpResponse r;
  r.SetHeader("Content-Type", "application/toml");
  r.SetHeader(kEpochHeader, std::to_string(cluster_map_.epoch));
  r.body = EncodeClusterMap(cluster_map_);
  Finish(responder, Route::kCluster, start_ns, std::move(r));
}

void Node::FollowPrimary(const std::string& primary) {
  // Whether this node's records are a prefix of the new primary's log is
  // settled when it asks to replicate: if not, the primary names the fork,
  // CutDivergedTail keeps what follows it, and a snapshot replaces the data.
  following_ = primary;
  SaveMarker(kFollowingFile, following_);
  StartFollowing(primary);
}

void Node::CutDivergedTail(const std::string& primary, uint64_t fork_lsn) {
  // The records after fork_lsn were written here and never reached the new
  // primary: keep them for the operator. The snapshot that follows on the
  // same stream replaces this node's data (the old data serves reads until
  // it is complete). A crash before then repeats the cut into the same file.
  const std::string lost_dir = options_.data_dir + "/lost";
  ::mkdir(lost_dir.c_str(), 0755);
  const std::string lost_path = lost_dir + "/epoch-" + std::to_string(cluster_map_.epoch) +
                                "-after-lsn-" + std::to_string(fork_lsn) + ".log";
  const uint64_t last = store_->last_lsn();
  uint64_t bytes = 0;
  {
    std::unique_ptr<storage::LogCursor> cursor;
    std::ofstream out(lost_path, std::ios::binary | std::ios::trunc);
    storage::Status s = store_->NewLogCursor(fork_lsn, &cursor);
    std::string chunk;
    while (s.ok()) {
      chunk.clear();
      s = cursor->Next(&chunk, 1 << 20);
      // An empty slice short of the durable LSN was spent skipping records.
      if (chunk.empty() && cursor->position() >= store_->durable_lsn()) break;
      out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      bytes += chunk.size();
    }
    out.flush();
    if (!s.ok() || !out) {
      Logf(LogLevel::kError, "shard %s: writing %s: %s", options_.shard.c_str(), lost_path.c_str(),
           s.ok() ? "write failed" : s.ToString().c_str());
    }
  }
  failover_.tails_cut++;
  failover_.lost_bytes += bytes;
  Logf(LogLevel::kWarn,
       "shard %s: LSNs %" PRIu64 "..%" PRIu64
       " were written here but never reached the new "
       "primary %s: %" PRIu64
       " bytes of records copied to %s (record format of "
       "storage/record_format.h); a snapshot of the new primary replaces them",
       options_.shard.c_str(), fork_lsn + 1, last, primary.c_str(), bytes, lost_path.c_str());
  events_.Add("lost", "LSNs " + std::to_string(fork_lsn + 1) + ".." + std::to_string(last) +
                          " cut into " + lost_path);
}

void Node::HandlePromote(net::HttpRequest& request, net::Responder responder, uint64_t start_ns) {
  bool force = false;
  std::vector<std::pair<std::string, std::string>> params;
  net::ParseQuery(request.query, &params);
  for (const auto& [name, value] : params) {
    if (name == "force") force = value.empty() || value == "true" || value == "1";
  }
  if (coordinator_) {
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(
               409, "coordinated",
               "failover is automatic through etcd ([coordinator] in the config); stop the "
               "primary to have a replica take over"));
    return;
  }
  if (!is_replica_) {
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(409, "already_primary",
                                  "this node is already the primary of shard " + options_.shard));
    return;
  }
  const std::string old_primary = cluster_map_.shards[self_].address;
  if (force) {
    Promote(std::move(responder), start_ns, "forced");
    return;
  }
  // Ask the primary how far it is; promoting while it is reachable and ahead
  // would cut off its newest writes.
  net::OutboundRequest req;
  req.target = "/stats";
  req.timeout_ms = kMapRequestTimeoutMs;
  auth_.AddPeerCredentials(&req.headers);
  std::weak_ptr<bool> alive = alive_;
  control_client_->Request(
      old_primary, std::move(req),
      [this, alive, responder, start_ns, old_primary](net::ClientResult& result) mutable {
        if (alive.expired()) return;
        if (!is_replica_) {
          Finish(responder, Route::kCluster, start_ns,
                 net::MakeErrorResponse(409, "already_primary",
                                        "this node became the primary meanwhile"));
          return;
        }
        if (result.error != net::ClientError::kNone) {
          Promote(std::move(responder), start_ns,
                  "the primary " + old_primary + " is unreachable (" + result.detail + ")");
          return;
        }
        const uint64_t theirs = StatsNumber(result.response.body, "durable_lsn");
        const uint64_t ours = store_->last_lsn();
        if (theirs > ours) {
          Finish(responder, Route::kCluster, start_ns,
                 net::MakeErrorResponse(409, "replica_behind",
                                        "the primary " + old_primary + " is reachable and at LSN " +
                                            std::to_string(theirs) + ", this replica at " +
                                            std::to_string(ours) +
                                            "; wait for it to catch up, or add ?force=true to "
                                            "promote anyway (its newer writes are then cut off)"));
          return;
        }
        Promote(std::move(responder), start_ns,
                "the primary " + old_primary + " is reachable and not ahead");
      });
}

void Node::Promote(net::Responder responder, uint64_t start_ns, const std::string& why) {
  ClusterMap next;
  std::string error;
  if (!PromotedMap(cluster_map_, options_.shard, advertise_, &next, &error)) {
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(409, "cannot_promote", error));
    return;
  }
  Logf(LogLevel::kInfo, "shard %s: promotion to epoch %" PRIu64 " (%s)", options_.shard.c_str(),
       next.epoch, why.c_str());
  if (!AdoptMap(std::move(next), "promote")) {
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(500, "cannot_promote",
                                  "the new cluster map could not be saved; see the node's log"));
    return;
  }
  PushMap();
  net::HttpResponse r;
  r.SetHeader("Content-Type", "application/toml");
  r.SetHeader(kEpochHeader, std::to_string(cluster_map_.epoch));
  r.body = EncodeClusterMap(cluster_map_);
  Finish(responder, Route::kCluster, start_ns, std::move(r));
}

}  // namespace distkv
