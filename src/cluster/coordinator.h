// Coordinator: automatic failover through etcd (`[coordinator] etcd = [...]`).
//
// No consensus of our own: etcd decides, the way Patroni uses it. In etcd,
// under the configured prefix (default "/distkv"):
//
//   <prefix>/map                  the cluster map (src/cluster/cluster_map.h text);
//                                 changed only by compare-and-put on its revision,
//                                 so every epoch is written once
//   <prefix>/leader/<shard>       the shard's primary address, under a lease
//
// Every node reads the map key each tick (a quarter of the lease TTL) and
// adopts a newer epoch — so every node follows etcd's map within a tick.
//
// The primary grants itself a lease of lease_ttl_ms and holds its shard's
// leader key under it (created with "create_revision = 0", or re-put under a
// new lease when the key already names it), renewing every tick. It may
// acknowledge writes only until (send time of the last successful renewal) +
// 3/4 TTL: etcd counts the TTL from when the renewal arrives, so the lease
// is alive at least that long, and a primary that was paused, cut off, or
// cannot reach etcd stops acknowledging before any replica can take over.
// It resumes by itself once a renewal succeeds and it still holds the key.
//
// A replica watches the leader key. When it is gone (the lease expired) and
//   - the replica saw it held since it started, or has run for 2 TTLs (so a
//     starting cluster gives its primaries time to take their keys),
//   - its lag to the primary, as last known, is within max_lag_records,
//   - the map's primary does not answer /health, and
//   - no other replica of the shard that answers has a higher LSN (ties go
//     to the lower address),
// it takes the key under its own lease, then writes the map with itself as
// primary under epoch + 1 (compare-and-put; if the map moved meanwhile it
// gives the key back), and adopts it. Its first write follows.
//
// Other changes of the map (a slot migration starting, its cutover) go
// through ProposeMap: read the map from etcd, build the change from that map
// (never from the node's own copy, which may be a tick behind), and put it
// with a compare on the revision just read. A failover and a cutover that
// race therefore cannot both win: the loser's comparison fails, it reads the
// map again and builds its change anew, or gives up when the change no
// longer makes sense on the new map.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/http_client.h"
#include "src/cluster/cluster_map.h"
#include "src/cluster/etcd_client.h"
#include "src/obs/json_writer.h"

namespace distkv {

struct CoordinatorOptions {
  std::vector<std::string> endpoints;  // etcd "host:port"s
  std::string prefix = "/distkv";
  uint64_t lease_ttl_ms = 3'000;
  uint64_t max_lag_records = 100'000;
  std::string shard;                      // this node's shard
  std::string self;                       // this node's address, as the map names it
  std::vector<net::Header> peer_headers;  // credentials for asking other nodes
};

// What the coordinator needs from the node; all called on the loop.
struct CoordinatorHooks {
  std::function<const ClusterMap&()> map;
  std::function<void(ClusterMap map)> adopt;  // a newer map from etcd
  std::function<bool()> is_primary;
  std::function<uint64_t()> last_lsn;
  // The replica's lag behind its primary as last known; -1 when unknown
  // (it never received a frame).
  std::function<int64_t()> lag_records;
};

class Coordinator {
 public:
  Coordinator(uv_loop_t* loop, net::HttpClient* client, CoordinatorOptions options,
              CoordinatorHooks hooks);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  void Start();
  void Stop();

  // How a change is built from the map etcd holds now (`current`).
  enum class Build {
    kPut,          // *next is the change, under a higher epoch
    kAlreadyDone,  // current already holds the change (an earlier answer was lost)
    kRefuse,       // the change does not apply to current; *why says why
  };
  using BuildMap =
      std::function<Build(const ClusterMap& current, ClusterMap* next, std::string* why)>;
  enum class Outcome {
    kCommitted,  // etcd holds the change and this node adopted it
    kRefused,    // build refused, or etcd's map kept moving under the comparison
    kUnknown,    // etcd could not be asked, or did not answer: made or not, nobody knows yet
  };
  using ProposeDone = std::function<void(Outcome outcome, const std::string& why)>;
  // Reads the map, builds, compare-and-puts; a lost comparison is retried on
  // the newer map a few times. A newer map read on the way is adopted first.
  void ProposeMap(BuildMap build, ProposeDone done);
  // The map as etcd holds it now; ok false when etcd could not be read.
  void ReadMap(std::function<void(bool ok, const ClusterMap& map)> done);

  // True while this primary's lease is confirmed; writes are refused (and
  // in-flight ones not acknowledged) otherwise.
  bool WritesAllowed() const;
  // True once this node, as primary, has taken or renewed its leader key
  // since the coordinator started: etcd confirmed that it is the primary.
  bool confirmed_once() const { return confirmed_once_; }
  // One line on where things stand ("holding the leader key", "etcd
  // unreachable: ...", ...) for /health, /cluster and the log.
  const std::string& state() const { return state_; }
  void WriteJson(JsonWriter* w) const;

  struct Counters {
    uint64_t ticks = 0;
    uint64_t etcd_errors = 0;
    uint64_t leases_granted = 0;
    uint64_t renewals = 0;
    uint64_t campaigns = 0;
    uint64_t elections_won = 0;
    uint64_t maps_published = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  void Tick();
  void SyncMap(std::function<void()> next);
  void PrimaryTick(std::function<void()> next);
  void Acquire(uint64_t confirmed_at_ms, std::function<void()> next);
  void ReplicaTick(std::function<void()> next);
  void CheckPeers(std::function<void()> next);
  void Campaign(std::function<void()> next);
  void PublishPromotion(uint64_t confirmed_at_ms, int attempts, std::function<void()> next);
  void ProposeAttempt(BuildMap build, ProposeDone done, int attempt);
  void SetState(std::string state);
  uint64_t NowMs() const { return uv_now(loop_); }
  std::string LeaderKey() const { return options_.prefix + "/leader/" + options_.shard; }
  std::string MapKey() const { return options_.prefix + "/map"; }

  uv_loop_t* loop_;
  net::HttpClient* client_;
  CoordinatorOptions options_;
  CoordinatorHooks hooks_;
  EtcdClient etcd_;
  uv_timer_t* timer_ = nullptr;
  bool busy_ = false;  // a tick's calls are in flight
  uint64_t started_ms_ = 0;

  int64_t lease_ = 0;
  bool holding_ = false;          // the leader key names us under lease_
  bool confirmed_once_ = false;   // see confirmed_once()
  uint64_t writes_until_ms_ = 0;  // loop time until which writes may be acknowledged
  bool seen_leader_ = false;      // a replica saw its shard's key held since start

  ClusterMap etcd_map_;  // as last read from etcd
  int64_t map_revision_ = 0;
  bool map_known_ = false;

  std::string state_ = "starting";
  Counters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace distkv
