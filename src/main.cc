// distkv: the command line.
//
//   distkv serve --config sharding.toml --shard NAME [--replica] [--data DIR]
//                [--listen HOST:PORT] [--advertise HOST:PORT] [--repair]
//                [--sync-journal FILE] [--slow-disk BYTES_PER_S] [--log-requests]
//
// `serve` may be left out when the first argument is a flag, as the seed
// projects were started (distkv --db-location=d --http-addr=... --shard=...).
//
// The seed projects' flags --config-file, --db-location and --http-addr are
// accepted as aliases. Without --config the node serves a single shard
// ("default") that owns every key, on 127.0.0.1:8080 unless --listen says
// otherwise.
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "net/http_client.h"
#include "src/cli/cli.h"
#include "src/cluster/config.h"
#include "src/cluster/shard_map.h"
#include "src/node/compact_command.h"
#include "src/node/node.h"
#include "src/node/reshard_command.h"
#include "src/obs/log.h"
#include "storage/number.h"

namespace {

constexpr const char* kUsage =
    "usage: distkv serve [--config FILE --shard NAME] [--replica] [--data DIR]\n"
    "                    [--listen HOST:PORT] [--advertise HOST:PORT] [--repair]\n"
    "                    [--sync-journal FILE] [--slow-disk BYTES_PER_S] [--log-requests]\n"
    "       distkv --db-location=DIR --http-addr=ADDR --config-file=FILE --shard=NAME\n"
    "                                             the same (the seed projects' form)\n"
    "       distkv nodes [--config FILE]          list the nodes of a config, one per line\n"
    "       distkv locate [--config FILE] KEY...  print each key's slot, shard and address\n"
    "       distkv promote [--config FILE] --shard NAME [--replica ADDR] [--force]\n"
    "                                             make a replica its shard's primary\n"
    "       distkv reshard [--config FILE] --slots A-B --to SHARD [--no-progress]\n"
    "       distkv rebalance [--config FILE] [--drain NAME] [--no-progress]\n"
    "       distkv compact [--config FILE] [--shard NAME]... [--node ADDR]... [--no-progress]\n"
    "                                             compact each shard's primary, with progress\n"
    "       distkv status [--config FILE] [--wait] [--no-progress]\n"
    "                                             every node's state; --wait follows running\n"
    "                                             resyncs, compactions, migrations to the end\n"
    "                      [--token T]            (or DISTKV_TOKEN; default: the config's secret)\n"
    "       distkv get|put|del|scan|ttl|mget|mput|stats|cluster [--cluster HOST:PORT,...] ...\n"
    "                                             client commands (distkv get --help)\n"
    "\n"
    "  --config FILE     cluster description (sharding.toml); alias --config-file\n"
    "  --shard NAME      the shard this node serves (required with --config)\n"
    "  --replica         serve as a read-only replica of the shard\n"
    "  --data DIR        the shard's data directory; alias --db-location\n"
    "                    (default: data/<shard> or data/<shard>-replica)\n"
    "  --listen ADDR     host:port to listen on; alias --http-addr\n"
    "                    (default: the shard's address, or its replica address)\n"
    "  --advertise ADDR  this node's address in sharding.toml when it listens on another\n"
    "                    (--listen 0.0.0.0:8080 --advertise db-1.internal:8080)\n"
    "  --repair          accept lost or damaged data instead of refusing to start: cut a\n"
    "                    damaged segment (the cut bytes go to a .corrupt file), record\n"
    "                    missing LSNs, start a new history\n"
    "  --clock-skew-ms N (for tests) run this node's clock N ms ahead (negative: behind)\n"
    "  --sync-journal F  (for tests) append each fdatasync'ed file size to F, so a test\n"
    "                    can cut the files back to what was durable after a SIGKILL\n"
    "  --slow-disk N     (for tests and benchmarks) write the data files at most N bytes/s\n"
    "  --fail-sync-after N (for tests) let N fdatasyncs succeed, then fail every later one\n"
    "                    with EIO, as a dying disk does\n"
    "  --log-requests    one log line per request\n";

struct Args {
  std::string config_path;
  distkv::NodeOptions node;
};

int Usage(const char* problem) {
  if (problem) std::fprintf(stderr, "distkv: %s\n\n", problem);
  std::fputs(kUsage, stderr);
  return 2;
}

// Returns -1 when the arguments are fine, else the exit code.
int ParseArgs(int argc, char** argv, Args* args) {
  // The seed projects' command line has no command word: flags first means serve.
  const bool bare_flags = argc >= 2 && argv[1][0] == '-' && std::strcmp(argv[1], "--help") != 0 &&
                          std::strcmp(argv[1], "-h") != 0;
  if (!bare_flags && (argc < 2 || std::strcmp(argv[1], "serve") != 0)) {
    if (argc >= 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    return Usage(argc < 2 ? "missing command" : "unknown command");
  }
  for (int i = bare_flags ? 1 : 2; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_inline = false;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline = true;
    }
    auto take = [&](std::string* out) -> bool {
      if (has_inline) {
        *out = value;
        return true;
      }
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    bool ok = true;
    if (flag == "--config" || flag == "--config-file") {
      ok = take(&args->config_path);
    } else if (flag == "--shard") {
      ok = take(&args->node.shard);
    } else if (flag == "--data" || flag == "--db-location") {
      ok = take(&args->node.data_dir);
    } else if (flag == "--listen" || flag == "--http-addr") {
      ok = take(&args->node.listen);
    } else if (flag == "--advertise") {
      ok = take(&args->node.advertise);
    } else if (flag == "--replica") {
      args->node.replica = true;
    } else if (flag == "--repair") {
      args->node.repair = true;
    } else if (flag == "--sync-journal") {
      ok = take(&args->node.sync_journal);
    } else if (flag == "--slow-disk") {
      std::string rate;
      ok = take(&rate);
      uint64_t n = 0;
      if (ok && distkv::storage::ParseUint(rate, 10, &n)) args->node.slow_disk_bytes_per_s = n;
      if (ok && n == 0) {
        return Usage("--slow-disk needs a number of bytes per second above 0");
      }
    } else if (flag == "--fail-sync-after") {
      std::string v;
      ok = take(&v);
      char* end = nullptr;
      args->node.fail_sync_after = ok ? std::strtoll(v.c_str(), &end, 10) : -1;
      if (ok && (v.empty() || *end != '\0' || args->node.fail_sync_after < 0)) {
        return Usage("--fail-sync-after needs a number of syncs, 0 or more");
      }
    } else if (flag == "--clock-skew-ms") {
      std::string v;
      ok = take(&v);
      char* end = nullptr;
      args->node.clock_skew_ms = ok ? std::strtoll(v.c_str(), &end, 10) : 0;
      ok = ok && end && *end == '\0' && !v.empty();
    } else if (flag == "--log-requests") {
      args->node.log_requests = true;
    } else if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      return Usage(("unknown flag " + flag).c_str());
    }
    if (!ok) return Usage(("flag " + flag + " needs a value").c_str());
  }
  if (args->config_path.empty()) {
    if (args->node.listen.empty()) args->node.listen = "127.0.0.1:8080";
    args->node.config = distkv::SingleNodeConfig(args->node.listen);
    if (args->node.shard.empty()) args->node.shard = "default";
  } else {
    std::string error;
    if (!distkv::LoadConfig(args->config_path, &args->node.config, &error)) {
      std::fprintf(stderr, "distkv: bad config: %s\n", error.c_str());
      return 1;
    }
    if (args->node.shard.empty()) return Usage("--shard NAME is required with --config");
  }
  if (args->node.data_dir.empty()) {
    args->node.data_dir = "data/" + args->node.shard + (args->node.replica ? "-replica" : "");
  }
  return -1;
}

struct SignalState {
  distkv::Node* node;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  bool stopping = false;
};

void OnSignal(uv_signal_t* handle, int signum) {
  auto* state = static_cast<SignalState*>(handle->data);
  if (state->stopping) return;
  state->stopping = true;
  distkv::Logf(distkv::LogLevel::kInfo, "%s: finishing in-flight requests and stopping",
               signum == SIGINT ? "SIGINT" : "SIGTERM");
  state->node->Shutdown([state]() {
    uv_close(reinterpret_cast<uv_handle_t*>(&state->sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&state->sigterm), nullptr);
  });
}

}  // namespace

// `distkv nodes --config FILE`: one line per node, "shard role address",
// for scripts (make run-multi) that must not parse TOML themselves.
int ListNodes(int argc, char** argv) {
  std::string path = "sharding.toml";
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    if ((flag == "--config" || flag == "--config-file") && i + 1 < argc) {
      path = argv[++i];
    } else {
      return Usage(("unknown flag " + flag).c_str());
    }
  }
  distkv::ClusterConfig config;
  std::string error;
  if (!distkv::LoadConfig(path, &config, &error)) {
    std::fprintf(stderr, "distkv: bad config: %s\n", error.c_str());
    return 1;
  }
  for (const auto& shard : config.shards) {
    std::printf("%s primary %s\n", shard.name.c_str(), shard.address.c_str());
    for (const auto& r : shard.replicas)
      std::printf("%s replica %s\n", shard.name.c_str(), r.c_str());
  }
  return 0;
}

// `distkv locate --config FILE KEY...`: "KEY slot shard address" per key
// (or per line of standard input when no key is given).
int Locate(int argc, char** argv) {
  std::string path = "sharding.toml";
  std::vector<std::string> keys;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "--config-file") && i + 1 < argc) {
      path = argv[++i];
    } else {
      keys.push_back(arg);
    }
  }
  distkv::ClusterConfig config;
  std::string error;
  if (!distkv::LoadConfig(path, &config, &error)) {
    std::fprintf(stderr, "distkv: bad config: %s\n", error.c_str());
    return 1;
  }
  distkv::ShardMap map(config.shards);
  auto print = [&](const std::string& key) {
    const distkv::ShardConfig& s = map.shards()[map.OwnerOfKey(key)];
    std::printf("%s %u %s %s\n", key.c_str(), distkv::SlotOf(key), s.name.c_str(),
                s.address.c_str());
  };
  if (keys.empty()) {
    char line[65536];
    while (std::fgets(line, sizeof line, stdin)) {
      std::string key(line);
      while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
      if (!key.empty()) print(key);
    }
  }
  for (const auto& key : keys) print(key);
  return 0;
}

// `distkv promote --config FILE --shard NAME --replica ADDR [--force]`: asks
// that replica to take over its shard (POST /admin/promote); it pushes the new
// cluster map to every node. Prints the new map; exit 0 on success, 1 when the
// replica refused (the reason is printed), 3 when it could not be reached.
int Promote(int argc, char** argv) {
  std::string path = "sharding.toml", shard, replica, token;
  if (const char* t = std::getenv("DISTKV_TOKEN")) token = t;
  bool force = false;
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    if ((flag == "--config" || flag == "--config-file") && i + 1 < argc) {
      path = argv[++i];
    } else if (flag == "--shard" && i + 1 < argc) {
      shard = argv[++i];
    } else if (flag == "--replica" && i + 1 < argc) {
      replica = argv[++i];
    } else if (flag == "--force") {
      force = true;
    } else if (flag == "--token" && i + 1 < argc) {
      token = argv[++i];
    } else {
      return Usage(("unknown flag " + flag).c_str());
    }
  }
  if (shard.empty()) return Usage("promote needs --shard NAME");
  distkv::ClusterConfig config;
  std::string error;
  if (!distkv::LoadConfig(path, &config, &error)) {
    std::fprintf(stderr, "distkv: bad config: %s\n", error.c_str());
    return 1;
  }
  distkv::ShardMap map(config.shards);
  const int pos = map.Find(shard);
  if (pos < 0) {
    std::fprintf(stderr, "distkv: %s has no shard named %s\n", path.c_str(), shard.c_str());
    return 1;
  }
  const distkv::ShardConfig& s = map.shards()[pos];
  if (replica.empty()) {
    if (s.replicas.size() != 1) {
      return Usage("promote needs --replica ADDR (the shard lists more than one replica)");
    }
    replica = s.replicas.front();
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = 3;
  {
    distkv::net::ClientOptions co;
    co.request_timeout_ms = 10'000;
    distkv::net::HttpClient client(&loop, co);
    distkv::net::OutboundRequest req;
    req.method = "POST";
    req.target = std::string("/admin/promote") + (force ? "?force=true" : "");
    // An admin token, or the cluster secret of a config that has one.
    if (token.empty()) token = config.auth.cluster_secret;
    if (!token.empty()) req.headers.push_back({"Authorization", "Bearer " + token});
    client.Request(replica, std::move(req), [&](distkv::net::ClientResult& result) {
      if (result.error != distkv::net::ClientError::kNone) {
        std::fprintf(stderr, "distkv: %s: %s\n", replica.c_str(), result.detail.c_str());
      } else if (result.response.status == 200) {
        std::fputs(result.response.body.c_str(), stdout);
        rc = 0;
      } else {
        std::fprintf(stderr, "distkv: %s answered %d: %s", replica.c_str(), result.response.status,
                     result.response.body.c_str());
        rc = 1;
      }
      client.Close();
    });
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc;
}

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && std::strcmp(argv[1], "promote") == 0) return Promote(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "nodes") == 0) return ListNodes(argc, argv);
  if (argc >= 2 && (std::strcmp(argv[1], "reshard") == 0 || std::strcmp(argv[1], "rebalance") == 0))
    return distkv::ReshardCommand(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "locate") == 0) return Locate(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "compact") == 0) return distkv::CompactCommand(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "status") == 0) return distkv::StatusCommand(argc, argv);
  if (distkv::cli::IsClientCommand(argc, argv)) return distkv::cli::RunClientCommand(argc, argv);
  Args args;
  if (int rc = ParseArgs(argc, argv, &args); rc >= 0) return rc;

  uv_loop_t loop;
  uv_loop_init(&loop);
  int exit_code = 0;
  {
    distkv::Node node(&loop, std::move(args.node));
    std::string error;
    if (!node.Start(&error)) {
      std::fprintf(stderr, "distkv: %s\n", error.c_str());
      exit_code = 1;
      node.Shutdown([] {});
    } else {
      SignalState signals{&node, {}, {}};
      uv_signal_init(&loop, &signals.sigint);
      uv_signal_init(&loop, &signals.sigterm);
      signals.sigint.data = signals.sigterm.data = &signals;
      uv_signal_start(&signals.sigint, OnSignal, SIGINT);
      uv_signal_start(&signals.sigterm, OnSignal, SIGTERM);
      uv_run(&loop, UV_RUN_DEFAULT);
    }
  }
  // Let every handle the node closed finish its close callback.
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) {
    distkv::LogLine(distkv::LogLevel::kWarn, "event loop closed with handles still open");
  }
  return exit_code;
}
