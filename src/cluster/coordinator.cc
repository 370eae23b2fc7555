#include "src/cluster/coordinator.h"

#include <algorithm>
#include <cinttypes>
#include <nlohmann/json.hpp>

#include "net/http_message.h"
#include "net/uv_handle.h"
#include "src/obs/log.h"

namespace distkv {
namespace {

uint64_t MonotonicMs() { return uv_hrtime() / 1'000'000; }

}  // namespace

Coordinator::Coordinator(uv_loop_t* loop, net::HttpClient* client, CoordinatorOptions options,
                         CoordinatorHooks hooks)
    : loop_(loop),
      client_(client),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      // A call that takes longer than a third of the lease is of no use.
      etcd_(client, options_.endpoints, std::max<uint64_t>(100, options_.lease_ttl_ms / 3)) {}

Coordinator::~Coordinator() {
  *alive_ = false;
  Stop();
}

void Coordinator::Start() {
  started_ms_ = MonotonicMs();
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  const uint64_t interval = std::max<uint64_t>(50, options_.lease_ttl_ms / 4);
  uv_timer_start(
      timer_, [](uv_timer_t* t) { static_cast<Coordinator*>(t->data)->Tick(); }, 0, interval);
}

void Coordinator::Stop() {
  if (!timer_) return;
  net::CloseAndDelete(timer_);
  timer_ = nullptr;
  writes_until_ms_ = 0;
}

bool Coordinator::WritesAllowed() const { return holding_ && MonotonicMs() < writes_until_ms_; }

void Coordinator::SetState(std::string state) {
  if (state == state_) return;
  Logf(LogLevel::kInfo, "coordinator (shard %s): %s", options_.shard.c_str(), state.c_str());
  state_ = std::move(state);
}

void Coordinator::WriteJson(JsonWriter* w) const {
  w->BeginObject();
  w->Field("etcd", etcd_.endpoint());
  w->Field("state", state_);
  w->Field("holding_leader_key", holding_);
  w->Field("writes_allowed", WritesAllowed());
  w->Field("lease_ttl_ms", options_.lease_ttl_ms);
  w->Field("etcd_errors", counters_.etcd_errors);
  w->Field("campaigns", counters_.campaigns);
  w->Field("elections_won", counters_.elections_won);
  w->EndObject();
}

void Coordinator::Tick() {
  if (busy_) return;
  busy_ = true;
  counters_.ticks++;
  std::weak_ptr<bool> alive = alive_;
  auto done = [this, alive] {
    if (!alive.expired()) busy_ = false;
  };
  SyncMap([this, alive, done] {
    if (alive.expired()) return;
    if (hooks_.is_primary()) {
      PrimaryTick(done);
    } else {
      ReplicaTick(done);
    }
  });
}

void Coordinator::SyncMap(std::function<void()> next) {
  etcd_.Get(MapKey(), [this, next](bool ok, const EtcdKey& key) {
    if (!ok) {
      counters_.etcd_errors++;
      SetState("etcd unreachable: " + etcd_.last_error());
      next();
      return;
    }
    const ClusterMap& local = hooks_.map();
    if (!key.found) {
      // A new cluster: the first node to get here publishes the config's map.
      etcd_.PutIfModRevision(MapKey(), 0, EncodeClusterMap(local),
                             [this, next](bool, bool succeeded) {
                               if (succeeded) counters_.maps_published++;
                               next();
                             });
      return;
    }
    ClusterMap map;
    std::string error;
    if (!DecodeClusterMap(key.value, "etcd " + MapKey(), &map, &error)) {
      SetState("the map in etcd is not valid: " + error);
      next();
      return;
    }
    etcd_map_ = map;
    map_revision_ = key.mod_revision;
    map_known_ = true;
    if (map.epoch > local.epoch) hooks_.adopt(std::move(map));
    next();
  });
}

void Coordinator::ReadMap(std::function<void(bool ok, const ClusterMap& map)> done) {
  std::weak_ptr<bool> alive = alive_;
  etcd_.Get(MapKey(), [this, alive, done = std::move(done)](bool ok, const EtcdKey& key) {
    if (alive.expired()) return;
    ClusterMap map;
    std::string error;
    if (!ok || !key.found || !DecodeClusterMap(key.value, "etcd " + MapKey(), &map, &error)) {
      if (!ok) counters_.etcd_errors++;
      done(false, map);
      return;
    }
    etcd_map_ = map;
    map_revision_ = key.mod_revision;
    map_known_ = true;
    if (map.epoch > hooks_.map().epoch) hooks_.adopt(map);
    done(true, map);
  });
}

void Coordinator::ProposeMap(BuildMap build, ProposeDone done) {
  ProposeAttempt(std::move(build), std::move(done), 0);
}

void Coordinator::ProposeAttempt(BuildMap build, ProposeDone done, int attempt) {
  std::weak_ptr<bool> alive = alive_;
  ReadMap([this, alive, build, done, attempt](bool ok, const ClusterMap& current) {
    if (alive.expired()) return;
    if (!ok) {
      done(Outcome::kUnknown, "cannot read the map from etcd: " + etcd_.last_error());
      return;
    }
    const int64_t revision = map_revision_;  // of `current`, set by ReadMap
    ClusterMap next;
    std::string why;
    switch (build(current, &next, &why)) {
      case Build::kRefuse:
        done(Outcome::kRefused, why);
        return;
      case Build::kAlreadyDone:
        done(Outcome::kCommitted, "");
        return;
      case Build::kPut:
        break;
    }
    if (next.epoch <= current.epoch) {
      done(Outcome::kRefused,
           "a change must raise the epoch above etcd's " + std::to_string(current.epoch));
      return;
    }
    etcd_.PutIfModRevision(
        MapKey(), revision, EncodeClusterMap(next),
        [this, alive, build, done, attempt, next](bool ok, bool succeeded) mutable {
          if (alive.expired()) return;
          if (!ok) {
            counters_.etcd_errors++;
            done(Outcome::kUnknown, "etcd did not answer the compare-and-put of epoch " +
                                        std::to_string(next.epoch) + ": " + etcd_.last_error());
            return;
          }
          if (!succeeded) {
            // The map moved since it was read (a failover, another change).
            if (attempt < 3) {
              ProposeAttempt(build, done, attempt + 1);
            } else {
              done(Outcome::kRefused, "the map in etcd kept changing; try again");
            }
            return;
          }
          counters_.maps_published++;
          Logf(LogLevel::kInfo, "coordinator (shard %s): map epoch %" PRIu64 " written to etcd",
               options_.shard.c_str(), next.epoch);
          hooks_.adopt(std::move(next));
          done(Outcome::kCommitted, "");
        });
  });
}

void Coordinator::PrimaryTick(std::function<void()> next) {
  const uint64_t sent = MonotonicMs();
  if (lease_ == 0) {
    const int64_t ttl_s = static_cast<int64_t>((options_.lease_ttl_ms + 999) / 1000);
    etcd_.Grant(ttl_s, [this, sent, next](bool ok, int64_t lease, int64_t) {
      if (!ok) {
        counters_.etcd_errors++;
        SetState("cannot get a lease from etcd, writes paused: " + etcd_.last_error());
        next();
        return;
      }
      counters_.leases_granted++;
      lease_ = lease;
      holding_ = false;
      Acquire(sent, next);
    });
    return;
  }
  etcd_.KeepAlive(lease_, [this, sent, next](bool ok, int64_t, int64_t ttl_s) {
    if (!ok) {
      counters_.etcd_errors++;
      SetState(std::string("cannot renew the lease") + (WritesAllowed() ? "" : ", writes paused") +
               ": " + etcd_.last_error());
      next();
      return;
    }
    if (ttl_s <= 0) {
      // Expired: another node may hold the key by now.
      Logf(LogLevel::kWarn, "coordinator (shard %s): lease expired; writes paused",
           options_.shard.c_str());
      lease_ = 0;
      holding_ = false;
      writes_until_ms_ = 0;
      next();
      return;
    }
    counters_.renewals++;
    if (holding_) {
      writes_until_ms_ = sent + options_.lease_ttl_ms * 3 / 4;
      SetState("primary, holding the leader key");
      next();
      return;
    }
    Acquire(sent, next);
  });
}

void Coordinator::Acquire(uint64_t confirmed_at_ms, std::function<void()> next) {
  etcd_.PutIfAbsent(
      LeaderKey(), options_.self, lease_, [this, confirmed_at_ms, next](bool ok, bool succeeded) {
        if (!ok) {
          counters_.etcd_errors++;
          next();
          return;
        }
        if (succeeded) {
          holding_ = true;
          confirmed_once_ = true;
          writes_until_ms_ = confirmed_at_ms + options_.lease_ttl_ms * 3 / 4;
          SetState("primary, holding the leader key");
          next();
          return;
        }
        // Held: by us under an older lease (a restart), or by someone else.
        etcd_.Get(LeaderKey(), [this, confirmed_at_ms, next](bool ok, const EtcdKey& key) {
          if (!ok || !key.found) {
            next();
            return;
          }
          if (key.value != options_.self) {
            holding_ = false;
            writes_until_ms_ = 0;
            SetState("the leader key names " + key.value + "; writes refused until the map says");
            next();
            return;
          }
          etcd_.PutIfValue(LeaderKey(), options_.self, options_.self, lease_,
                           [this, confirmed_at_ms, next](bool ok, bool succeeded) {
                             if (ok && succeeded) {
                               holding_ = true;
                               confirmed_once_ = true;
                               writes_until_ms_ = confirmed_at_ms + options_.lease_ttl_ms * 3 / 4;
                               SetState("primary, holding the leader key");
                             }
                             next();
                           });
        });
      });
}

void Coordinator::ReplicaTick(std::function<void()> next) {
  holding_ = false;
  writes_until_ms_ = 0;
  etcd_.Get(LeaderKey(), [this, next](bool ok, const EtcdKey& key) {
    if (!ok) {
      counters_.etcd_errors++;
      next();
      return;
    }
    if (key.found) {
      seen_leader_ = true;
      SetState("replica, the primary " + key.value + " holds the leader key");
      next();
      return;
    }
    if (!seen_leader_ && MonotonicMs() - started_ms_ < 2 * options_.lease_ttl_ms) {
      next();
      return;
    }
    const int64_t lag = hooks_.lag_records();
    if (lag < 0 || static_cast<uint64_t>(lag) > options_.max_lag_records) {
      SetState("replica, the leader key is free but this replica's lag (" +
               (lag < 0 ? std::string("unknown") : std::to_string(lag) + " records") +
               ") is above max_lag_records; not running");
      next();
      return;
    }
    CheckPeers(next);
  });
}

void Coordinator::CheckPeers(std::function<void()> next) {
  // The map's primary, if it answers, takes its key back itself; a replica
  // with more records should win instead of this one.
  const ClusterMap& map = hooks_.map();
  auto it = std::find_if(map.shards.begin(), map.shards.end(),
                         [&](const ShardConfig& s) { return s.name == options_.shard; });
  if (it == map.shards.end()) return next();
  struct Round {
    size_t pending = 0;
    bool someone_better = false;
    std::string why;
  };
  auto round = std::make_shared<Round>();
  std::vector<std::string> peers;
  if (it->address != options_.self) peers.push_back(it->address);
  for (const std::string& r : it->replicas) {
    if (r != options_.self) peers.push_back(r);
  }
  const uint64_t mine = hooks_.last_lsn();
  const std::string primary = it->address;
  round->pending = peers.size();
  std::weak_ptr<bool> alive = alive_;
  auto finish = [this, alive, round, next] {
    if (alive.expired()) return;
    if (round->someone_better) {
      SetState("replica, the leader key is free; " + round->why);
      next();
      return;
    }
    Campaign(next);
  };
  if (peers.empty()) return finish();
  for (const std::string& peer : peers) {
    net::OutboundRequest req;
    req.target = "/stats";
    req.timeout_ms = std::max<uint64_t>(100, options_.lease_ttl_ms / 4);
    req.headers = options_.peer_headers;
    client_->Request(
        peer, std::move(req),
        [this, alive, round, finish, peer, primary, mine](net::ClientResult& result) {
          if (alive.expired()) return;
          if (result.error == net::ClientError::kNone && result.response.status == 200) {
            nlohmann::json j = nlohmann::json::parse(result.response.body, nullptr, false);
            if (j.is_object()) {
              const uint64_t theirs = j.value("last_lsn", uint64_t{0});
              const std::string role = j.value("role", std::string());
              if (peer == primary && role == "primary") {
                round->someone_better = true;
                round->why = "the primary " + peer + " answers; it takes its key back";
              } else if (role == "replica" &&
                         (theirs > mine || (theirs == mine && peer < options_.self))) {
                round->someone_better = true;
                round->why = "replica " + peer + " is further (LSN " + std::to_string(theirs) +
                             " vs " + std::to_string(mine) + ")";
              }
            }
          }
          if (--round->pending == 0) finish();
        });
  }
}

void Coordinator::Campaign(std::function<void()> next) {
  counters_.campaigns++;
  const uint64_t sent = MonotonicMs();
  const int64_t ttl_s = static_cast<int64_t>((options_.lease_ttl_ms + 999) / 1000);
  etcd_.Grant(ttl_s, [this, sent, next](bool ok, int64_t lease, int64_t) {
    if (!ok) {
      counters_.etcd_errors++;
      next();
      return;
    }
    counters_.leases_granted++;
    lease_ = lease;
    etcd_.PutIfAbsent(LeaderKey(), options_.self, lease_,
                      [this, sent, next](bool ok, bool succeeded) {
                        if (!ok || !succeeded) {
                          lease_ = 0;  // lost the race; the lease expires by itself
                          next();
                          return;
                        }
                        counters_.elections_won++;
                        holding_ = true;
                        PublishPromotion(sent, 0, next);
                      });
  });
}

void Coordinator::PublishPromotion(uint64_t confirmed_at_ms, int attempts,
                                   std::function<void()> next) {
  ClusterMap base = map_known_ && etcd_map_.epoch >= hooks_.map().epoch ? etcd_map_ : hooks_.map();
  ClusterMap promoted;
  std::string error;
  if (!PromotedMap(base, options_.shard, options_.self, &promoted, &error)) {
    SetState("won the leader key but cannot build the map: " + error);
    etcd_.DeleteIfValue(LeaderKey(), options_.self, [next](bool, bool) { next(); });
    holding_ = false;
    return;
  }
  etcd_.PutIfModRevision(
      MapKey(), map_revision_, EncodeClusterMap(promoted),
      [this, confirmed_at_ms, attempts, next, promoted](bool ok, bool succeeded) mutable {
        if (ok && succeeded) {
          counters_.maps_published++;
          writes_until_ms_ = confirmed_at_ms + options_.lease_ttl_ms * 3 / 4;
          Logf(LogLevel::kWarn, "coordinator (shard %s): elected primary, epoch %" PRIu64,
               options_.shard.c_str(), promoted.epoch);
          hooks_.adopt(std::move(promoted));
          SetState("primary, holding the leader key");
          next();
          return;
        }
        if (attempts < 2) {
          // The map moved meanwhile (another shard's failover): read it again.
          SyncMap([this, confirmed_at_ms, attempts, next] {
            PublishPromotion(confirmed_at_ms, attempts + 1, next);
          });
          return;
        }
        // Give the key back rather than hold it without being in the map.
        holding_ = false;
        etcd_.DeleteIfValue(LeaderKey(), options_.self, [next](bool, bool) { next(); });
      });
}

}  // namespace distkv
