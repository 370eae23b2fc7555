// The cluster-test harness: real distkv processes on loopback, driven over
// HTTP, stopped, killed and restarted by the tests.
//
//   TempDir      a directory of the test's own (mkdtemp), removed at the end.
//   ClusterSpec  a sharding.toml in memory: shards, routing, fsync, extra
//                [server]/[limits]/[cluster]/[storage]/[replication] keys.
//   Process      a child process (distkv, distkv-bench): its output goes to
//                a log file; Start/Stop (SIGTERM)/Kill (SIGKILL)/WaitForExit.
//                The destructor kills what is still running, and
//                PR_SET_PDEATHSIG kills it even if the test binary itself
//                dies, so no process outlives a test.
//   Node         a Process running `distkv serve`, with WaitReady (GET
//                /health) and Restart on the same data directory.
//   TestCluster  a TempDir, a config file and one Node per shard primary
//                (and replica), each on a free 127.0.0.1 port.
//
// When a test has failed, every Process prints the tail of its log as it is
// destroyed, so a failure report shows what the node said; a sanitizer
// report anywhere in a log fails the test (make test-asan builds the nodes
// with ASan/UBSan).
//
// Slot arithmetic is recomputed here from DESIGN.md (XXH3 % 16384, equal
// contiguous ranges by idx) instead of being borrowed from src/: the tests
// check the node's routing, they must not share its bugs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"
#include "tests/cluster/test_tls.h"

namespace distkv::clustertest {

// Absolute paths of the binaries under test, from DISTKV_BIN and
// DISTKV_BENCH_BIN; the test fails clearly when one is not set.
std::string DistkvBinary();
std::string BenchBinary();

// True once a check of the running test case has failed.
bool CurrentTestFailed();

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// n distinct TCP ports on 127.0.0.1 that no other test process will hand out.
// Ports come from blocks of kPortBlock in [kPortBase, kPortLimit), below the
// kernel's ephemeral range (so no outgoing connection takes one); a test
// process claims a block by holding flock(2) on $TMPDIR/distkv-test-ports/
// <block>.lock until it exits, and never hands out a port twice. A port some
// other program is bound to is skipped.
inline constexpr int kPortBase = 20000;
inline constexpr int kPortLimit = 32000;
inline constexpr int kPortBlock = 100;
std::vector<int> FreePorts(size_t n);

void WriteFile(const std::string& path, std::string_view content);
// The whole content of a file; "" when it cannot be read.
std::string ReadFile(const std::string& path);

// Polls cond every poll_ms until it holds or timeout_ms passes; returns the
// last result. For waiting on the system, never for asserting speed.
bool WaitUntil(const std::function<bool()>& cond, int timeout_ms, int poll_ms = 20);

constexpr size_t kSlots = 16384;
size_t SlotOf(std::string_view key);
// The idx of the shard that owns slot, for shard_count shards split evenly.
size_t OwnerOfSlot(size_t slot, size_t shard_count);

struct ShardSpec {
  std::string name;
  int idx = 0;
  std::string address;                // the primary's host:port
  std::vector<std::string> replicas;  // host:port of each replica
};

struct ClusterSpec {
  std::vector<ShardSpec> shards;
  std::string routing;  // "proxy" | "redirect"; "" leaves the node's default
  std::string fsync;    // "always" | "everysec" | "never"; "" leaves the default
  // section -> key -> TOML literal, e.g. settings["server"]["header_timeout_ms"] = "1000".
  std::map<std::string, std::map<std::string, std::string>> settings;

  ClusterSpec& Set(const std::string& section, const std::string& key, int64_t value);
  ClusterSpec& SetString(const std::string& section, const std::string& key,
                         const std::string& value);
  std::string ToToml() const;
  // Position in `shards` of the shard that owns key.
  size_t OwnerOf(std::string_view key) const;
};

// `shards` shards on 127.0.0.1, each primary and replica on a free port, named
// like the example cluster (Delhi, Mumbai, Hyderabad, Chennai, then shard-N).
ClusterSpec LocalCluster(size_t shards, size_t replicas_per_shard = 0);

// One child process of the test: argv[0] is binary, stdout and stderr are
// appended to log_path (a banner line marks each start).
class Process {
 public:
  Process(std::string label, std::string binary, std::vector<std::string> args,
          std::string log_path);
  virtual ~Process();  // kills and reaps what still runs; prints the log tail if the test failed
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void Start();  // fork/exec; does not wait
  // SIGTERM, then waits for the exit (10 s). The exit code; 128+N when ended by
  // signal N; -1 (and a failed check) when it had to be killed.
  int Stop();
  void Kill();  // SIGKILL, and reaps the process
  // Waits (bounded) for the process to end by itself: its exit code (128+N
  // for signal N), or -1 if it is still running after timeout_ms.
  int WaitForExit(int timeout_ms);
  bool running();  // reaps the child if it has exited
  pid_t pid() const { return pid_; }

  std::string LogTail(size_t lines = 40) const;
  const std::string& label() const { return label_; }
  std::vector<std::string>& args() { return args_; }

 protected:
  std::string DescribeLastExit() const;

 private:
  bool Reap(bool block);
  int ExitCode() const;  // of the last exit, as WaitForExit reports it

  std::string label_;
  std::string binary_;
  std::vector<std::string> args_;
  std::string log_path_;
  pid_t pid_ = -1;
  int exit_status_ = 0;  // raw waitpid status of the last exit
  int starts_ = 0;
};

// A distkv node: a Process running DISTKV_BIN that serves `shard` on `address`.
class Node : public Process {
 public:
  // args follow the binary name ("serve", "--config", ...).
  Node(std::string label, std::string shard, std::string address, std::vector<std::string> args,
       std::string log_path);

  void WaitReady();  // until GET /health answers 200 (10 s), else the test fails with the log tail
  void StartAndWait() {
    Start();
    WaitReady();
  }
  void Restart() { StartAndWait(); }

  const std::string& shard() const { return shard_; }
  const std::string& address() const { return address_; }

 private:
  std::string shard_;
  std::string address_;
};

class TestCluster {
 public:
  explicit TestCluster(ClusterSpec spec);
  // Stops every node still running with SIGTERM and checks that it exits 0
  // (a crash or a sanitizer report at shutdown fails the test); after a
  // failure it just kills them.
  ~TestCluster();
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  // Gives the nodes of one shard a config file of their own (call before
  // Start): how a test makes two nodes disagree about the map.
  void UseConfigFor(size_t shard, const ClusterSpec& spec);
  // Starts every node, then waits until each one is ready.
  void Start();

  size_t size() const { return spec_.shards.size(); }
  Node& primary(size_t shard) { return *primaries_.at(shard); }
  Node& replica(size_t shard, size_t k = 0) { return *replicas_.at(shard).at(k); }
  const std::string& address(size_t shard) const { return spec_.shards.at(shard).address; }
  const ClusterSpec& spec() const { return spec_; }
  const TempDir& dir() const { return dir_; }
  size_t OwnerOf(std::string_view key) const { return spec_.OwnerOf(key); }
  // The first n keys prefix0, prefix1, ... that shard `owner` holds.
  std::vector<std::string> KeysOf(size_t owner, size_t n, const std::string& prefix) const;

 private:
  void MakeNodes(size_t shard, const std::string& config_path);

  TempDir dir_;  // first member: outlives the nodes and their logs
  ClusterSpec spec_;
  std::vector<std::unique_ptr<Node>> primaries_;
  std::vector<std::vector<std::unique_ptr<Node>>> replicas_;
};

// One etcd member (Debian's etcd-server) on loopback, its data in dir.
class Etcd : public Process {
 public:
  Etcd(const TempDir& dir, int client_port, int peer_port);
  void StartAndWait();  // until its /health answers (20 s), else the test fails
  const std::string& address() const { return address_; }

 private:
  std::string address_;
};

// An etcd member and a TestCluster whose config names it ([coordinator]
// etcd, lease_ttl_ms), started; `adjust` changes the spec before the start.
struct EtcdCluster {
  EtcdCluster(size_t shards, size_t replicas, int min_acks = 0, int lease_ttl_ms = 2'000,
              const std::function<void(ClusterSpec&)>& adjust = {});
  TempDir dir;  // etcd's data and log
  std::vector<int> ports;
  Etcd etcd;
  ClusterSpec spec;
  std::unique_ptr<TestCluster> cluster;
};

// The cluster map etcd holds under prefix + "/map", in the nodes' text
// format; "" when etcd does not answer or holds none.
std::string EtcdMapText(SyncHttp& http, const std::string& etcd,
                        const std::string& prefix = "/distkv");

// What a cluster map's text says, read here without the node's decoder: its
// epoch, each slot's owner by name ("" for none; "*" for a slot two shards
// claim) and how many migrations it lists.
struct MapView {
  uint64_t epoch = 0;
  std::vector<std::string> owner;
  size_t migrations = 0;
};
MapView ParseMapText(const std::string& text);

// ETag: "<lsn>" (quotes included) -> lsn; false for any other shape.
bool ParseEtag(std::string_view etag, uint64_t* lsn);
inline bool Is2xx(int status) { return status >= 200 && status < 300; }

// GET target, requiring 200 and a JSON body.
Json GetJson(SyncHttp& http, const std::string& address, const std::string& target,
             std::vector<net::Header> headers = {});
// The integer field of a JSON object; the check fails when it is missing.
int64_t JsonInt(const Json& object, std::string_view field);
// The string field of a JSON object; the check fails when it is missing.
std::string JsonText(const Json& object, std::string_view field);
// True when the body is the project's error shape {"error": "...", "message": "..."}.
bool IsJsonError(const Reply& reply);
bool IsJsonError(std::string_view body);

// A node's /internal/digest as "keys/digest" (equal strings: equal data), or
// "unreachable" when it does not answer 200.
std::string DigestOf(SyncHttp& http, const std::string& address);
// The contents of every lost/*.log of a node's data directory (the writes a
// deposed primary cut from its log), concatenated; "" when there are none.
std::string LostText(const std::string& data_dir);
// The newest segment file (*.seg) of a node's data directory; "" if none.
std::string NewestSegmentOf(const std::string& data_dir);
// The size of a node's segment files (*.seg), together.
uint64_t SegmentBytesOf(const std::string& data_dir);
// The bytes of a segment file that hold records: its size less the zero
// bytes pre-allocated after them (fsync = "always", active segment).
uint64_t RecordBytesOf(const std::string& segment);
// The key count of a node's /stats, or -1 when it does not answer.
int64_t KeysOn(SyncHttp& http, const std::string& address);
// Checks that every key of `expect` reads as last written through each node
// of `via` (200 with the value; 404 where the value is "", a delete), and
// returns how many keys are live.
size_t CheckReadsAsWritten(SyncHttp& http, const std::map<std::string, std::string>& expect,
                           const std::vector<std::string>& via);
// The epoch of a node's cluster map (/cluster), or 0 when it does not answer.
uint64_t EpochOf(SyncHttp& http, const std::string& address);
// The start of the failover tests on a shard of one primary and two replicas
// (LocalCluster(1, 2), started): writes `keys` keys k0, k1, ... of `value`
// to the primary and waits until both replicas hold them; kills the primary
// and promotes replica 0 (epoch 1) while it is down; writes /kv/epoch-1
// through the promoted node and waits until replica 1 holds it; pauses both
// replicas (SIGSTOP: the old primary must not learn the new map from them);
// restarts the old primary with `restart_args` added (it knows only epoch 0)
// and writes /kv/deposed-write to it, a write no other node will ever hold.
// Returns the old primary's last LSN before it was killed. The caller
// resumes the replicas (SIGCONT).
uint64_t DeposePrimaryWhileDown(TestCluster& cluster, SyncHttp& http, int keys,
                                const std::string& value,
                                const std::vector<std::string>& restart_args = {});
// Runs `distkv args...` (a command, not a server) to its end and returns its
// exit code; its output goes to dir/label.log and is shown when it fails.
int RunDistkv(const TempDir& dir, const std::string& label, std::vector<std::string> args,
              int timeout_ms = 120'000);

}  // namespace distkv::clustertest
