#include "src/node/node.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include <xxhash.h>

#include "net/address.h"
#include "src/obs/log.h"
#include "storage/failing_sync_io.h"
#include "storage/record_format.h"
#include "storage/sync_journal_io.h"
#include "storage/throttled_io.h"

namespace distkv {

Node::Node(uv_loop_t* loop, NodeOptions options)
    : loop_(loop),
      options_(std::move(options)),
      map_(options_.config.shards),
      auth_(options_.config.auth) {
  key_limits_.max_key_bytes = options_.config.max_key_bytes;
  key_limits_.max_value_bytes = options_.config.max_value_bytes;
}

Node::~Node() = default;

bool Node::Start(std::string* error) {
  const ClusterConfig& config = options_.config;
  int pos = map_.Find(options_.shard);
  if (pos < 0) {
    std::string names;
    for (const auto& s : config.shards) names += (names.empty() ? "" : ", ") + s.name;
    *error = config.source + ": no shard named \"" + options_.shard + "\" (shards: " + names + ")";
    return false;
  }
  self_ = static_cast<size_t>(pos);
  const ShardConfig& shard = map_.shards()[self_];
  listen_ = options_.listen;
  if (listen_.empty()) {
    if (!options_.replica) {
      listen_ = shard.address;
    } else if (!shard.replicas.empty()) {
      listen_ = shard.replicas.front();
    } else {
      *error = config.source + ": shard " + shard.name + " lists no replica to serve as";
      return false;
    }
  }
  advertise_ = options_.advertise.empty() ? listen_ : options_.advertise;
  if (options_.replica &&
      std::find(shard.replicas.begin(), shard.replicas.end(), advertise_) == shard.replicas.end()) {
    // The primary accepts streams and acks only from the replicas it knows.
    std::string listed;
    for (const auto& r : shard.replicas) listed += (listed.empty() ? "" : ", ") + r;
    *error = config.source + ": " + advertise_ + " is not a replica of shard " + shard.name +
             " (its replicas: " + (listed.empty() ? "none" : listed) +
             "); a replica listening on another address names its own with --advertise";
    return false;
  }
  net::HostPort listen;
  std::string problem;
  if (!net::ParseHostPort(listen_, &listen, &problem)) {
    *error = "listen address \"" + listen_ + "\" is not host:port: " + problem;
    return false;
  }
  std::string host;
  const int port = listen.port;
  if (int rc = net::ResolveListenHost(loop_, listen.host, &host); rc != 0) {
    *error = "cannot resolve the listen host " + listen.host + ": " + uv_strerror(rc);
    return false;
  }

  storage::Options so;
  so.dir = options_.data_dir;
  so.segment_bytes = config.segment_bytes;
  so.fsync = config.fsync;
  so.repair = options_.repair;
  // Every node of the shard orders its keys alike, so a scan's cursor stays
  // valid across restarts, failover and a replica's answer; the cluster
  // secret keeps the order unknown to whoever could craft colliding keys.
  const std::string seed_text = config.auth.cluster_secret + '\0' + shard.name;
  so.index_hash_seed = XXH3_64bits(seed_text.data(), seed_text.size());
  // Layers for tests and benchmarks, each over the one before: a journal of
  // what was synced, a slow disk, a disk whose syncs start failing.
  auto add_layer = [&](std::unique_ptr<storage::Io> layer) {
    so.io = layer.get();
    io_layers_.push_back(std::move(layer));
  };
  if (!options_.sync_journal.empty()) {
    auto journal =
        std::make_unique<storage::SyncJournalIo>(storage::Io::Posix(), options_.sync_journal);
    if (!journal->ok()) {
      *error = "cannot open the sync journal " + options_.sync_journal;
      return false;
    }
    add_layer(std::move(journal));
  }
  if (options_.slow_disk_bytes_per_s > 0) {
    add_layer(std::make_unique<storage::ThrottledIo>(so.io ? so.io : storage::Io::Posix(),
                                                     options_.slow_disk_bytes_per_s));
  }
  if (options_.fail_sync_after >= 0) {
    add_layer(std::make_unique<storage::FailingSyncIo>(
        so.io ? so.io : storage::Io::Posix(), static_cast<uint64_t>(options_.fail_sync_after)));
  }
  so.log = [](std::string_view line) { LogLine(LogLevel::kInfo, line); };
  store_options_ = so;
  storage::Status s = storage::Store::Open(so, &store_);
  if (!s.ok()) {
    *error = "cannot open the store in " + so.dir + ": " + s.ToString();
    return false;
  }
  pipeline_ = std::make_unique<CommitPipeline>(loop_, store_.get());
  StartCompactor();
  AttachExpiryClock();

  // [tls]: this node's port is HTTPS, and it reaches its peers over TLS,
  // presenting its own certificate (which mutual TLS asks for).
  std::shared_ptr<net::TlsContext> tls_server, tls_client;
  if (config.tls) {
    std::string tls_error;
    tls_server =
        net::TlsContext::NewServer(config.tls_files, config.tls_verify_clients, &tls_error);
    if (tls_server) tls_client = net::TlsContext::NewClient(config.tls_files, &tls_error);
    if (!tls_client) {
      *error = config.source + ": [tls]: " + tls_error;
      return false;
    }
  }
  auto log_warning = [](std::string_view line) { LogLine(LogLevel::kWarn, line); };

  net::ClientOptions co;
  co.tls = tls_client;
  co.log = log_warning;
  co.connect_timeout_ms = config.connect_timeout_ms;
  co.request_timeout_ms = config.forward_timeout_ms;
  co.max_connections_per_peer = config.forward_max_connections;
  client_ = std::make_unique<net::HttpClient>(loop_, co);
  // Cluster-map and coordinator traffic on connections of its own: a slow
  // or silent peer's control request never holds up forwarded requests.
  control_client_ = std::make_unique<net::HttpClient>(loop_, co);
  forwarder_ = std::make_unique<Forwarder>(config, client_.get(), &auth_, shard.name);
  tls_client_ = tls_client;
  if (!InitClusterMap(error)) return false;
  if (is_replica_) {
    FollowPrimary(map_.shards()[self_].address);
  } else {
    StartPrimary();
  }

  server_ = std::make_unique<net::HttpServer>(
      loop_, config.server, [this](net::HttpRequest& request, net::Responder responder) {
        OnRequest(request, std::move(responder));
      });
  server_->AddResponseHeader("X-Distkv-Shard", shard.name);
  server_->SetLog(log_warning);
  // Peers' forwards wait for no room here: their own caps bound them.
  server_->SetStagingExempt(
      [](const net::HttpRequest& request) { return request.header(kHopHeader) != nullptr; });
  if (tls_server) server_->EnableTls(tls_server);
  int rc = server_->Listen(host, port);
  if (rc != 0) {
    *error = "cannot listen on " + listen_ + ": " + uv_strerror(rc);
    return false;
  }
  started_ns_ = uv_hrtime();
  if (replica_) replica_->Start();
  if (!auth_.enabled()) {
    Logf(LogLevel::kInfo,
         "authentication is off: anyone who can reach %s may read, write and replicate (add "
         "[auth] to %s to require tokens)",
         listen_.c_str(), config.source.c_str());
  }
  events_.Add("start", std::string(role_name()) + " of " + shard.name + " on " + listen_ + ", " +
                           std::to_string(store_->size()) + " keys, last LSN " +
                           std::to_string(store_->last_lsn()));
  StartMapPoll();
  StartExpirer();
  StartCoordinator();
  StartMigrations();
  Logf(LogLevel::kInfo,
       "shard %s (%s) serving on %s, data in %s, %" PRIu64 " keys, last LSN %" PRIu64
       ", fsync=%s, routing=%s%s",
       shard.name.c_str(), role_name(), listen_.c_str(), so.dir.c_str(), store_->size(),
       store_->last_lsn(), std::string(storage::FsyncModeName(config.fsync)).c_str(),
       config.routing == RoutingMode::kProxy ? "proxy" : "redirect",
       !config.tls                 ? ""
       : config.tls_verify_clients ? ", HTTPS with client certificates"
                                   : ", HTTPS");
  return true;
}

void Node::Shutdown(std::function<void()> done) {
  if (!server_) {
    done();
    return;
  }
  StopMapPoll();
  EndMigrationTimers();
  StopExpirer();
  if (coordinator_) coordinator_->Stop();
  // Streams never end by themselves: end them first so the server can drain.
  if (primary_) primary_->Stop();
  if (replica_) replica_->Stop();
  server_->Shutdown([this, done = std::move(done)]() mutable {
    // A compaction in flight uses the store's files: wait for it first.
    compactor_->Stop([this, done = std::move(done)]() mutable {
      pipeline_->Drain([this, done = std::move(done)]() {
        client_->Close();
        control_client_->Close();
        Logf(LogLevel::kInfo, "shard %s stopped at LSN %" PRIu64, map_.shards()[self_].name.c_str(),
             store_->durable_lsn());
        done();
      });
    });
  });
}

void Node::StartCompactor() {
  const ClusterConfig& config = options_.config;
  CompactorOptions cpo;
  cpo.dead_ratio = config.compact_dead_ratio;
  cpo.min_bytes = config.compact_min_bytes;
  using P = ClusterConfig::CompactPriority;
  cpo.priority = config.compact_priority == P::kIdle  ? JobPriority::kIdle
                 : config.compact_priority == P::kLow ? JobPriority::kLow
                                                      : JobPriority::kNormal;
  cpo.bytes_per_s = config.compact_bytes_per_s;
  // Tombstones replicas have not seen yet stay, within replica_keep_records.
  cpo.keep_tombstones_after = [this]() {
    return primary_ ? primary_->KeepTombstonesAfter(options_.config.replica_keep_records)
                    : UINT64_MAX;
  };
  cpo.progress = &progress_;
  cpo.events = &events_;
  compactor_ = std::make_unique<Compactor>(loop_, store_.get(), cpo);
}

net::HttpResponse Node::HandleCompact() {
  net::HttpResponse r;
  switch (compactor_->Start("POST /admin/compact")) {
    case Compactor::StartResult::kRunning:
      return net::MakeErrorResponse(409, "compaction_running",
                                    "a compaction is already running; /stats shows its progress");
    case Compactor::StartResult::kNothingToDo: {
      r.status = 200;
      JsonWriter w(&r.body);
      w.BeginObject();
      w.Field("started", false);
      w.Field("message", "no sealed segment to compact");
      w.EndObject();
      break;
    }
    case Compactor::StartResult::kStarted: {
      r.status = 202;
      JsonWriter w(&r.body);
      w.BeginObject();
      w.Field("started", true);
      w.EndObject();
      break;
    }
  }
  r.body += "\n";
  r.SetHeader("Content-Type", "application/json");
  return r;
}

void Node::Finish(net::Responder& responder, Route route, uint64_t start_ns,
                  net::HttpResponse&& response) {
  const uint64_t micros = (uv_hrtime() - start_ns) / 1000;
  metrics_.Record(route, response.status, micros);
  if (options_.log_requests) {
    Logf(LogLevel::kDebug, "%s %d %" PRIu64 "us", std::string(RouteName(route)).c_str(),
         response.status, micros);
  }
  responder.Send(std::move(response));
}

net::HttpResponse Node::StorageError(const storage::Status& status) const {
  if (status.IsNoSpace()) {
    return net::MakeErrorResponse(507, "disk_full",
                                  "the write was not stored: " + std::string(status.message()) +
                                      "; free disk space on this node and retry");
  }
  if (status.IsCorruption()) {
    // Damage on disk: never answered with wrong bytes. The message names the
    // file and offset; the log keeps it for the operator.
    LogLine(LogLevel::kError, "read failed: " + status.ToString());
    return net::MakeErrorResponse(
        500, "corrupt_record",
        "the stored record is damaged, so it is not served: " + std::string(status.message()));
  }
  return net::MakeErrorResponse(500, "storage_error", status.ToString());
}

void Node::OnRequest(net::HttpRequest& request, net::Responder responder) {
  const uint64_t start_ns = uv_hrtime();
  ParsedRequest parsed;
  net::HttpResponse error;
  const Authenticator::Identity who = auth_.Identify(request);
  if (!ParseRequest(request, key_limits_, &parsed, &error)) {
    // Only a known sender learns why its request is wrong.
    if (!who.valid) auth_.Allow(who, Role::kRead, &error);
    Finish(responder, Route::kOther, start_ns, std::move(error));
    return;
  }
  if (!auth_.Allow(who, RequiredRole(parsed, auth_.config().status_role), &error)) {
    Finish(responder, Route::kOther, start_ns, std::move(error));
    return;
  }
  switch (parsed.endpoint) {
    case Endpoint::kKv:
      HandleKv(request, parsed, who.role, std::move(responder), start_ns);
      return;
    case Endpoint::kHealth: {
      // A store that turned read-only after a failed sync still serves
      // reads: 200, but it says so and why.
      net::HttpResponse r;
      r.SetHeader("Content-Type", "application/json");
      const storage::Status writable = store_->writable();
      JsonWriter w(&r.body);
      w.BeginObject();
      w.Field("status", writable.ok() ? "ok" : "read_only");
      w.Field("role", role_name());
      if (!writable.ok()) w.Field("reason", writable.message());
      if (coordinator_) {
        w.Key("coordinator");
        coordinator_->WriteJson(&w);
      }
      w.EndObject();
      r.body += "\n";
      Finish(responder, Route::kHealth, start_ns, std::move(r));
      return;
    }
    case Endpoint::kStats:
      Finish(responder, Route::kStats, start_ns, StatsResponse());
      return;
    case Endpoint::kMetrics:
      Finish(responder, Route::kMetrics, start_ns, MetricsResponse());
      return;
    case Endpoint::kCluster:
      HandleCluster(std::move(responder), start_ns);
      return;
    case Endpoint::kClusterStatus:
      HandleClusterStatus(std::move(responder), start_ns);
      return;
    case Endpoint::kUi:
      Finish(responder, Route::kUi, start_ns, UiResponse());
      return;
    case Endpoint::kDigest:
      HandleDigest(std::move(responder), start_ns);
      return;
    case Endpoint::kCompact:
      Finish(responder, Route::kCompact, start_ns, HandleCompact());
      return;
    case Endpoint::kClusterMap:
      HandleClusterMap(request, std::move(responder), start_ns);
      return;
    case Endpoint::kPromote:
      HandlePromote(request, std::move(responder), start_ns);
      return;
    case Endpoint::kPurge:
      HandlePurge(std::move(responder), start_ns);
      return;
    case Endpoint::kMigrate:
      HandleMigrate(request, std::move(responder), start_ns);
      return;
    case Endpoint::kSlots:
      HandleSlots(request, std::move(responder), start_ns);
      return;
    case Endpoint::kScan:
      HandleScan(parsed.scan, std::move(responder), start_ns);
      return;
    case Endpoint::kShardScan:
      HandleShardScan(parsed.scan, std::move(responder), start_ns);
      return;
    case Endpoint::kMget:
    case Endpoint::kMput:
      HandleBatch(parsed.endpoint, request, std::move(responder), start_ns);
      return;
    case Endpoint::kReplicate:
    case Endpoint::kReplicaAck:
      HandleReplication(parsed.endpoint, request, std::move(responder), start_ns);
      return;
  }
}

void Node::HandleReplication(Endpoint endpoint, net::HttpRequest& request, net::Responder responder,
                             uint64_t start_ns) {
  if (!primary_) {
    const ShardConfig& shard = map_.shards()[self_];
    Finish(responder, Route::kReplication, start_ns,
           net::MakeErrorResponse(403, "not_primary",
                                  "this node is a replica of shard " + shard.name +
                                      "; replicate from its primary at " + shard.address));
    return;
  }
  if (endpoint == Endpoint::kReplicaAck) {
    Finish(responder, Route::kReplication, start_ns, primary_->HandleAck(request));
    return;
  }
  // A stream answers for as long as the replica follows: count it as it starts.
  metrics_.Record(Route::kReplication, 200, (uv_hrtime() - start_ns) / 1000);
  primary_->HandleReplicate(request, std::move(responder));
}

void Node::HandleKv(net::HttpRequest& request, ParsedRequest& parsed, Role role,
                    net::Responder responder, uint64_t start_ns) {
  KvRequest& kv = parsed.kv;
  const size_t owner = map_.OwnerOfKey(kv.key);
  if (owner != self_) {
    const ShardConfig& shard = map_.shards()[owner];
    if (request.header(kHopHeader)) {
      // The sender believes we own this key; we believe otherwise. Forwarding
      // again could loop, so say so instead.
      Finish(responder, Route::kOther, start_ns,
             net::MakeErrorResponse(
                 421, "misdirected_request",
                 "shard " + map_.shards()[self_].name + " does not own this key (slot " +
                     std::to_string(SlotOf(kv.key)) + " belongs to " + shard.name + " at " +
                     shard.address + "); the nodes' sharding.toml files disagree"));
      return;
    }
    if (options_.config.routing == RoutingMode::kRedirect) {
      Finish(responder, Route::kRedirected, start_ns, forwarder_->Redirect(request, shard));
      return;
    }
    auto reply = [this, responder = std::move(responder),
                  start_ns](net::HttpResponse&& response) mutable {
      Finish(responder, Route::kForwarded, start_ns, std::move(response));
    };
    static_assert(Forwarder::Reply::kFitsInline<decltype(reply)>,
                  "the node's forward callback must not allocate: widen Forwarder::Reply");
    forwarder_->Forward(request, kv, shard, role, std::move(reply));
    return;
  }
  if (net::HttpResponse paused; SlotPaused(SlotOf(kv.key), &paused)) {
    Finish(responder, Route::kOther, start_ns, std::move(paused));
    return;
  }
  if (kv.op == KvOp::kGet) {
    HandleLocalGet(kv, std::move(responder), start_ns);
    return;
  }
  net::HttpResponse refusal;
  if (!MayWrite(&refusal, request.target)) {
    Finish(responder, kv.op == KvOp::kPut ? Route::kKvPut : Route::kKvDelete, start_ns,
           std::move(refusal));
    return;
  }
  HandleLocalWrite(kv, std::move(responder), start_ns);
}

// A primary's read answers only what a crash cannot take back. Reads see
// staged records at once, so a value (or an absence) that may rest on a
// record whose batch is not yet durable waits for that batch: otherwise one
// client could read a write that a crash then loses, and a later read go back
// in time. An absence may rest on a staged delete, which the index no longer
// shows, so it rests on everything staged. When the batch fails, the read is
// made again on what the store kept (or its refusal replaced by the error).
// A replica needs no wait: it holds only what its primary made durable.
// [storage] reads = "latest" turns this off.
uint64_t Node::RestsOn(bool found, uint64_t lsn) const { return found ? lsn : store_->last_lsn(); }

bool Node::ReadableNow(uint64_t rests_on) const {
  return is_replica_ || options_.config.reads_latest || rests_on <= store_->durable_lsn();
}

void Node::HandleLocalGet(const KvRequest& kv, net::Responder responder, uint64_t start_ns) {
  if (net::HttpResponse held; ReadsHeld(&held)) {
    Finish(responder, Route::kKvGet, start_ns, std::move(held));
    return;
  }
  std::string value;
  uint64_t lsn = 0;
  uint64_t expires_ms = 0;
  storage::Status s = store_->Get(kv.key, &value, &lsn, &expires_ms);
  // An error shows nothing the store holds: it is answered at once.
  const uint64_t rests_on = RestsOn(s.ok(), lsn);
  if ((!s.ok() && !s.IsNotFound()) || ReadableNow(rests_on)) {
    AnswerGet(kv, std::move(responder), start_ns, s, std::move(value), lsn, expires_ms);
    return;
  }
  pipeline_->WhenReadable(rests_on, [this, kv, responder, start_ns, s, value = std::move(value),
                                     lsn, expires_ms](const storage::Status& durable) mutable {
    if (durable.ok()) {
      AnswerGet(kv, std::move(responder), start_ns, s, std::move(value), lsn, expires_ms);
      return;
    }
    std::string now;
    uint64_t now_lsn = 0, now_expires_ms = 0;
    const storage::Status again = store_->Get(kv.key, &now, &now_lsn, &now_expires_ms);
    AnswerGet(kv, std::move(responder), start_ns, again, std::move(now), now_lsn, now_expires_ms);
  });
}

void Node::AnswerGet(const KvRequest& kv, net::Responder responder, uint64_t start_ns,
                     const storage::Status& s, std::string&& value, uint64_t lsn,
                     uint64_t expires_ms) {
  net::HttpResponse r;
  if (s.IsNotFound()) {
    r = net::MakeErrorResponse(404, "not_found", "no value for this key");
  } else if (!s.ok()) {
    r = StorageError(s);
  } else {
    r.body = std::move(value);
    // The hottest path: the answer's own headers as ready lines, one string
    // (no header list to build, search and free).
    constexpr std::string_view kContentType = "Content-Type: application/octet-stream\r\n";
    r.header_lines.reserve(kMaxEtagLineBytes + kContentType.size());
    AppendEtagLine(lsn, &r.header_lines);
    r.header_lines.append(kContentType);
    if (expires_ms != 0) AddExpiryHeaders(&r, expires_ms);
    if (kv.if_none_match_star ||
        (!kv.if_none_match.empty() && std::find(kv.if_none_match.begin(), kv.if_none_match.end(),
                                                lsn) != kv.if_none_match.end())) {
      r.status = 304;  // the client's copy is current
      r.body.clear();
    }
  }
  Finish(responder, Route::kKvGet, start_ns, std::move(r));
}

}  // namespace distkv
