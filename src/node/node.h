// Node: one distkv process — the primary or a replica of one shard.
//
// It ties the parts together on one libuv loop: the HTTP server (net/),
// the shard's Store (storage/) with its group-commit pipeline, the shard map
// that says who owns a key, and the forwarder that sends other shards' keys
// on. Requests for this shard's keys are answered here; writes are
// acknowledged only once their batch is durable.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/http_client.h"
#include "net/http_server.h"
#include "net/inline_function.h"
#include "src/api/auth.h"
#include "src/api/batch_request.h"
#include "src/api/kv_request.h"
#include "src/cluster/cluster_map.h"
#include "src/cluster/config.h"
#include "src/cluster/coordinator.h"
#include "src/cluster/forwarder.h"
#include "src/cluster/migration.h"
#include "src/cluster/shard_map.h"
#include "src/obs/events.h"
#include "src/obs/metrics.h"
#include "src/obs/progress.h"
#include "src/replication/primary.h"
#include "src/replication/replica.h"
#include "src/shard/commit_pipeline.h"
#include "src/shard/compactor.h"
#include "storage/io.h"
#include "storage/store.h"

namespace distkv {

struct NodeOptions {
  ClusterConfig config;
  std::string shard;     // name of the shard this node serves
  bool replica = false;  // serve as a read-only replica of it
  std::string data_dir;  // the shard's directory
  std::string listen;    // "host:port"; default: the config's address for this node
  // This node's address in the config, when it listens on another (0.0.0.0:8080).
  std::string advertise;
  bool repair = false;       // accept lost or damaged data instead of refusing to start
  std::string sync_journal;  // tests: record synced sizes here (storage/sync_journal_io.h)
  uint64_t slow_disk_bytes_per_s = 0;  // tests, benchmarks: a disk this slow (throttled_io.h)
  int64_t fail_sync_after = -1;        // tests: syncs after this many fail (failing_sync_io.h)
  bool log_requests = false;
  int64_t clock_skew_ms = 0;  // tests: this node's clock runs this far off (expiry)
};

// Writes the members "name", "idx" and "slots" ([[first,last],...]) of a
// shard's object, which /cluster and /cluster/status share; the caller has
// opened the object and goes on with its own members.
void WriteShardHead(JsonWriter* w, const ShardConfig& s);

class Node {
 public:
  Node(uv_loop_t* loop, NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Opens the store and starts listening. False with *error on failure.
  bool Start(std::string* error);
  // Stops accepting, finishes in-flight requests, makes every staged write
  // durable, closes the client, then calls done.
  void Shutdown(std::function<void()> done);

  const std::string& listen_address() const { return listen_; }
  // Where the node's parts record what an operator should see: events
  // (failover, compaction, resync...) and long operations' progress.
  EventLog* events() { return &events_; }
  ProgressBoard* progress() { return &progress_; }

  // How long /cluster/status waits for a node's /stats before listing it as down.
  static constexpr uint64_t kStatusTimeoutMs = 1000;

 private:
  void OnRequest(net::HttpRequest& request, net::Responder responder);
  void Finish(net::Responder& responder, Route route, uint64_t start_ns,
              net::HttpResponse&& response);
  void HandleKv(net::HttpRequest& request, ParsedRequest& parsed, Role role,
                net::Responder responder, uint64_t start_ns);
  void HandleLocalGet(const KvRequest& kv, net::Responder responder, uint64_t start_ns);
  // The rule for every answer that shows what the store holds (a GET, an
  // _mget part, a write refused for what it found), in one place (node.cc):
  // RestsOn is the LSN such a read rests on; ReadableNow says whether it may
  // be answered at once, else it waits for pipeline_->WhenReadable.
  uint64_t RestsOn(bool found, uint64_t lsn) const;
  bool ReadableNow(uint64_t rests_on) const;
  void AnswerGet(const KvRequest& kv, net::Responder responder, uint64_t start_ns,
                 const storage::Status& s, std::string&& value, uint64_t lsn, uint64_t expires_ms);
  // The write path: staged -> durable -> replica acks -> answer (write_path.cc).
  struct LocalWrite;
  void HandleLocalWrite(KvRequest& kv, net::Responder responder, uint64_t start_ns);
  // Why this node may not stage a write now (a replica, an unconfirmed
  // lease): false with the answer in *refusal.
  bool MayWrite(net::HttpResponse* refusal, std::string_view request_target);
  // 503 while the store refuses writes (after a failed sync); else false.
  bool StoreReadOnly(net::HttpResponse* refusal) const;
  // Calls done once the write staged at `lsn` may be acknowledged: durable,
  // still staged by the primary of this role generation holding its lease,
  // and acknowledged by `needed` replicas. done(nullptr) then, or
  // done(&answer) with the error to answer instead. The stages are
  // OnWriteDurable and OnWriteAcked.
  // Move-only, with room in place for a PUT's answer (write_path.cc): the
  // write path allocates no callback.
  using WriteDone = net::InlineFunction<void(net::HttpResponse* refusal), 56>;
  void AwaitWrite(uint64_t lsn, int needed, WriteDone&& done);
  void RefuseWrite(Route route, uint64_t start_ns, uint64_t rests_on, net::Responder responder,
                   net::HttpResponse refusal);
  void OnWriteDurable(LocalWrite write, const storage::Status& status);
  void OnWriteAcked(LocalWrite write, bool acked);
  void HandleReplication(Endpoint endpoint, net::HttpRequest& request, net::Responder responder,
                         uint64_t start_ns);
  void HandleCluster(net::Responder responder, uint64_t start_ns);
  // /cluster/status and /ui, in cluster_status.cc.
  void HandleClusterStatus(net::Responder responder, uint64_t start_ns);
  net::HttpResponse UiResponse() const;
  net::HttpResponse HandleCompact();
  // Scans, in scan.cc.
  struct ScanJob;
  void HandleScan(const ScanRequest& request, net::Responder responder, uint64_t start_ns);
  void HandleShardScan(const ScanRequest& request, net::Responder responder, uint64_t start_ns);
  storage::Status LocalScanPage(const ScanRequest& request, size_t limit, ShardScanPage* page);
  using LocalPageDone = std::function<void(const storage::Status& s, ShardScanPage page)>;
  void DurableLocalScanPage(const ScanRequest& request, size_t limit, LocalPageDone done);
  void ScanStep(std::shared_ptr<ScanJob> job);
  void ScanAsk(std::shared_ptr<ScanJob> job, std::shared_ptr<std::vector<std::string>> peers,
               size_t next_peer, size_t want);
  void ScanPageDone(std::shared_ptr<ScanJob> job, ShardScanPage page);
  std::string ScanCursor(const ScanJob& job) const;
  // Batches, in batch.cc.
  struct BatchJob;
  void HandleBatch(Endpoint endpoint, net::HttpRequest& request, net::Responder responder,
                   uint64_t start_ns);
  void BatchLocal(const std::shared_ptr<BatchJob>& job, std::vector<size_t> part);
  void BatchRemote(const std::shared_ptr<BatchJob>& job, size_t shard, std::vector<size_t> part,
                   size_t next_peer);
  void BatchPartDone(const std::shared_ptr<BatchJob>& job);
  // Status pages, in node_status.cc.
  net::HttpResponse StatsResponse() const;
  net::HttpResponse MetricsResponse() const;
  // GET /internal/digest, read in slices across loop turns (digest.cc).
  struct DigestJob;
  void HandleDigest(net::Responder responder, uint64_t start_ns);
  void DigestSlice(DigestJob* job);
  net::HttpResponse StorageError(const storage::Status& status) const;

  // Failover: the cluster map this node follows and its role in it (failover.cc).
  bool InitClusterMap(std::string* error);
  void SwitchMap(ClusterMap map);
  bool AdoptMap(ClusterMap map, const std::string& from);
  void ApplyRole();
  void BecomePrimary();
  void BecomeReplicaOf(const std::string& primary);
  void StartPrimary();
  void StartFollowing(const std::string& primary);
  std::vector<std::string> PeerAddresses() const;
  void FetchMap(const std::string& peer);
  void PushMap();
  void StartMapPoll();
  void StopMapPoll();
  void HandleClusterMap(net::HttpRequest& request, net::Responder responder, uint64_t start_ns);
  void HandlePromote(net::HttpRequest& request, net::Responder responder, uint64_t start_ns);
  void Promote(net::Responder responder, uint64_t start_ns, const std::string& why);
  void StartCoordinator();
  // Follows `primary`, first cutting what this node's log holds beyond the
  // point where that primary's history began (a deposed primary's
  // unreplicated writes) into lost/.
  void FollowPrimary(const std::string& primary);
  void StartCompactor();
  void CutDivergedTail(const std::string& primary, uint64_t fork_lsn);
  // Full resync (resync.cc): reopens the store so that the snapshot staged
  // beside it becomes the store, then hands the new one to done.
  void InstallSnapshot(uint64_t lsn, ReplicationReplicaOptions::Installed done);
  void SaveMarker(const char* name, const std::string& value);
  // Whether this primary may take or acknowledge a write now; else *why.
  bool WritesFenced(std::string* why) const;
  // Whether this node's data may hold records its shard's history does not
  // (a deposed primary's never-acknowledged tail), so that it must serve no
  // read: a replica that was deposed or changed primary until the new
  // primary has accepted its stream, a node that started as primary under
  // etcd until etcd confirmed it (failover.cc). Then *refusal is the 503.
  bool ReadsHeld(net::HttpResponse* refusal);
  void HoldReplicaReads(const std::string& why);

  // Keys with a TTL (expiry.cc).
  uint64_t NowMs() const;  // the wall clock, Unix ms, with clock_skew_ms
  void AttachExpiryClock();
  void StartExpirer();
  void StopExpirer();
  void ExpireDue();
  // X-Distkv-Expires (Unix ms) and X-Distkv-TTL (seconds left, rounded up).
  void AddExpiryHeaders(net::HttpResponse* r, uint64_t expires_ms) const;

  const char* role_name() const { return is_replica_ ? "replica" : "primary"; }

  // Slot migration (migration.cc): the source's pause and streams, the
  // target's import, /purge.
  void StartMigrations();  // at start: a saved pause, an import to resume
  void EndMigrationTimers();
  void OnMapChangedForMigrations();
  void HandlePurge(net::Responder responder, uint64_t start_ns);
  void HandleMigrate(net::HttpRequest& request, net::Responder responder, uint64_t start_ns);
  void HandleSlots(net::HttpRequest& request, net::Responder responder, uint64_t start_ns);
  // 503 while slot is paused for a cutover on this source; else false.
  bool SlotPaused(uint32_t slot, net::HttpResponse* answer) const;
  // Writes the member "migrations": [...] of /cluster and /cluster/status.
  void WriteMigrationsJson(JsonWriter* w) const;
  void Purge(std::function<void(uint64_t purged, const storage::Status&)> done);
  void PauseFor(uint64_t id, SlotRange slots, const std::string& target, uint64_t lsn);
  void EndPause(const char* why);
  void CheckPause();
  void ArmPauseCheck();
  void ImportStep();
  void ImportRetry(const std::string& why);
  void ImportApply(std::shared_ptr<std::string> body, size_t offset, std::function<void()> next);
  void ImportCutover();
  void ImportCommit();
  void ImportCommitThroughEtcd();
  void RecordMigrationDone(const MigrationImport& finished);

  uv_loop_t* loop_;
  NodeOptions options_;
  ShardMap map_;
  size_t self_ = 0;  // position of this node's shard in map_.shards()
  std::string listen_;
  std::string advertise_;  // the address sharding.toml gives this node: advertise, or listen_
  KeyLimits key_limits_;
  Authenticator auth_;
  uint64_t started_ns_ = 0;

  // --sync-journal, --slow-disk, --fail-sync-after: the Io layers under
  // store_, each over the one before; declared before store_ so they outlive it.
  std::vector<std::unique_ptr<storage::Io>> io_layers_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<CommitPipeline> pipeline_;
  std::unique_ptr<Compactor> compactor_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<net::HttpClient> client_;
  std::unique_ptr<Forwarder> forwarder_;
  // Exactly one of these: the shard's primary streams its log, a replica follows it.
  std::unique_ptr<ReplicationPrimary> primary_;
  std::unique_ptr<ReplicationReplica> replica_;
  RequestMetrics metrics_;
  EventLog events_;
  ProgressBoard progress_;

  std::shared_ptr<net::TlsContext> tls_client_;  // for connections to peers, when [tls] is on

  // Failover state. map_ is built from cluster_map_; maps replaced by a newer
  // epoch are kept in retired_maps_ (see SwitchMap).
  ClusterMap cluster_map_;
  std::deque<ShardMap> retired_maps_;
  bool is_replica_ = false;
  // Started as primary from a saved map under etcd, not yet confirmed by it.
  bool primary_unconfirmed_ = false;
  // Deposed or re-pointed, and not yet accepted by the new primary.
  bool replica_reads_held_ = false;
  // Bumped at every role change: a write staged under one role is not
  // acknowledged under another.
  uint64_t role_generation_ = 0;
  uint64_t install_requests_ = 0;  // InstallSnapshot calls: only the newest may cancel
  uv_timer_t* map_timer_ = nullptr;
  uv_timer_t* expiry_timer_ = nullptr;
  uint64_t expired_keys_ = 0;  // tombstones written for expired keys
  size_t map_poll_next_ = 0;
  struct FailoverCounters {
    uint64_t maps_adopted = 0;
    uint64_t promotions = 0;
    uint64_t demotions = 0;
    uint64_t writes_fenced = 0;  // staged as primary, answered 503 after a demotion
    uint64_t tails_cut = 0;      // diverged log tails moved to lost/
    uint64_t lost_bytes = 0;
  };
  FailoverCounters failover_;
  std::unique_ptr<net::HttpClient> control_client_;  // map fetches and pushes, etcd
  std::unique_ptr<Coordinator> coordinator_;         // with [coordinator] etcd = [...]
  storage::Options store_options_;                   // to reopen the store after a cut
  // The primary this node's log follows (file "following"). Where a
  // primary's history began is in the store's MANIFEST (history lines).
  std::string following_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  // A source's cutover pause (persisted in the file migration_pause) and the
  // import this primary runs as a migration's target.
  MigrationPause pause_;
  uv_timer_t* pause_timer_ = nullptr;
  std::shared_ptr<MigrationImport> import_;
  uv_timer_t* import_timer_ = nullptr;
  std::deque<std::string> migrations_done_;  // JSON of the last imports completed here
  bool purging_ = false;
  uint64_t purged_keys_ = 0;
};

}  // namespace distkv
