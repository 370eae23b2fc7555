// The cluster-test harness: see harness.h.
#include "tests/cluster/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>

#include "src/common/etag.h"
#include "src/obs/json_bytes.h"

namespace distkv::clustertest {

namespace {

using Clock = std::chrono::steady_clock;

// Set by FailureWatcher when a check of the running test case fails; read by
// ~Process to decide whether a log tail is worth printing. A doctest listener is
// the only place that learns of failures, hence this one piece of state.
bool g_current_test_failed = false;

struct FailureWatcher : public doctest::IReporter {
  explicit FailureWatcher(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { g_current_test_failed = false; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {
    g_current_test_failed = true;
  }
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& data) override {
    if (data.m_failed) g_current_test_failed = true;
  }
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

std::string EnvBinary(const std::string& variable) {
  const char* value = std::getenv(variable.c_str());
  REQUIRE_MESSAGE(value != nullptr,
                  variable << " is not set: run through `make cluster-test`, or set it to the "
                              "absolute path of the binary");
  std::string path = value;
  REQUIRE_MESSAGE(access(value, X_OK) == 0,
                  variable << "=" << path << " is not an executable file");
  return path;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

const char* const kShardNames[] = {"Delhi", "Mumbai", "Hyderabad", "Chennai"};

}  // namespace

DOCTEST_REGISTER_LISTENER("cluster-failure-watcher", 1, FailureWatcher);

bool CurrentTestFailed() { return g_current_test_failed; }

std::string DistkvBinary() { return EnvBinary("DISTKV_BIN"); }
std::string BenchBinary() { return EnvBinary("DISTKV_BENCH_BIN"); }

// --- TempDir ----------------------------------------------------------------

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/distkv-cluster-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  REQUIRE_MESSAGE(mkdtemp(buf.data()) != nullptr, "mkdtemp " << pattern << ": " << strerror(errno));
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

// --- small utilities -----------------------------------------------------------

namespace {

// True when port can be bound on 127.0.0.1 now (nothing else listens there).
bool PortBindable(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE_MESSAGE(fd >= 0, "socket: " << strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as the node binds
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// The ports this process has claimed and not handed out yet.
class PortAllocator {
 public:
  int Next() {
    for (;;) {
      if (next_ == end_) ClaimBlock();
      int port = next_++;
      if (PortBindable(port)) return port;
    }
  }

 private:
  void ClaimBlock() {
    const char* base = std::getenv("TMPDIR");
    std::string dir =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/distkv-test-ports";
    ::mkdir(dir.c_str(), 0777);  // may exist; open() below reports real trouble
    const int blocks = (kPortLimit - kPortBase) / kPortBlock;
    // Start at a different block in each process so claims rarely contend.
    const int first = static_cast<int>(getpid()) % blocks;
    for (int i = 0; i < blocks; ++i) {
      const int block = (first + i) % blocks;
      if (claimed_.count(block)) continue;
      std::string path = dir + "/" + std::to_string(block) + ".lock";
      int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
      REQUIRE_MESSAGE(fd >= 0, "open " << path << ": " << strerror(errno));
      if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        continue;
      }
      // Held (fd left open) until the process exits; the kernel releases it.
      claimed_.insert(block);
      next_ = kPortBase + block * kPortBlock;
      end_ = next_ + kPortBlock;
      return;
    }
    FAIL("every port block in " << dir << " is claimed by another process");
  }

  std::set<int> claimed_;
  int next_ = 0;
  int end_ = 0;
};

}  // namespace

std::vector<int> FreePorts(size_t n) {
  static PortAllocator allocator;
  std::vector<int> ports;
  for (size_t i = 0; i < n; ++i) ports.push_back(allocator.Next());
  return ports;
}

void WriteFile(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  REQUIRE_MESSAGE(out.good(), "cannot write " << path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool WaitUntil(const std::function<bool()>& cond, int timeout_ms, int poll_ms) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (cond()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

size_t SlotOf(std::string_view key) { return XXH3_64bits(key.data(), key.size()) % kSlots; }

size_t OwnerOfSlot(size_t slot, size_t shard_count) {
  // Shard i owns [i*kSlots/N, (i+1)*kSlots/N).
  for (size_t i = 0; i < shard_count; ++i) {
    if (slot < (i + 1) * kSlots / shard_count) return i;
  }
  return shard_count - 1;
}

// --- ClusterSpec -------------------------------------------------------------------

ClusterSpec& ClusterSpec::Set(const std::string& section, const std::string& key, int64_t value) {
  settings[section][key] = std::to_string(value);
  return *this;
}

ClusterSpec& ClusterSpec::SetString(const std::string& section, const std::string& key,
                                    const std::string& value) {
  settings[section][key] = "\"" + value + "\"";
  return *this;
}

std::string ClusterSpec::ToToml() const {
  std::map<std::string, std::map<std::string, std::string>> sections = settings;
  if (!routing.empty()) sections["cluster"]["routing"] = "\"" + routing + "\"";
  if (!fsync.empty()) sections["storage"]["fsync"] = "\"" + fsync + "\"";
  if (TlsEverywhere() && !sections.count("tls")) {
    sections["tls"]["cert"] = "\"" + Certs().cert + "\"";
    sections["tls"]["key"] = "\"" + Certs().key + "\"";
    sections["tls"]["ca"] = "\"" + Certs().ca + "\"";
  }
  std::ostringstream out;
  out << "# written by the cluster-test harness\n";
  for (const auto& [section, entries] : sections) {
    out << "\n[" << section << "]\n";
    for (const auto& [key, literal] : entries) out << key << " = " << literal << "\n";
  }
  for (const ShardSpec& shard : shards) {
    out << "\n[[shards]]\nname = \"" << shard.name << "\"\nidx = " << shard.idx << "\naddress = \""
        << shard.address << "\"\n";
    if (!shard.replicas.empty()) {
      out << "replicas = [";
      for (size_t i = 0; i < shard.replicas.size(); ++i)
        out << (i ? ", " : "") << "\"" << shard.replicas[i] << "\"";
      out << "]\n";
    }
  }
  return out.str();
}

size_t ClusterSpec::OwnerOf(std::string_view key) const {
  size_t idx = OwnerOfSlot(SlotOf(key), shards.size());
  for (size_t i = 0; i < shards.size(); ++i) {
    if (static_cast<size_t>(shards[i].idx) == idx) return i;
  }
  FAIL("no shard has idx " << idx);
  return 0;
}

ClusterSpec LocalCluster(size_t shards, size_t replicas_per_shard) {
  std::vector<int> ports = FreePorts(shards * (1 + replicas_per_shard));
  size_t next = 0;
  ClusterSpec spec;
  for (size_t i = 0; i < shards; ++i) {
    ShardSpec shard;
    shard.name = i < std::size(kShardNames) ? kShardNames[i] : "shard-" + std::to_string(i);
    shard.idx = static_cast<int>(i);
    shard.address = "127.0.0.1:" + std::to_string(ports[next++]);
    for (size_t r = 0; r < replicas_per_shard; ++r)
      shard.replicas.push_back("127.0.0.1:" + std::to_string(ports[next++]));
    spec.shards.push_back(std::move(shard));
  }
  return spec;
}

// --- Process and Node ------------------------------------------------------------------------

Process::Process(std::string label, std::string binary, std::vector<std::string> args,
                 std::string log_path)
    : label_(std::move(label)),
      binary_(std::move(binary)),
      args_(std::move(args)),
      log_path_(std::move(log_path)) {}

Process::~Process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    Reap(true);
  }
  if (starts_ > 0) {
    std::ifstream in(log_path_, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("AddressSanitizer") != std::string::npos ||
          line.find("LeakSanitizer") != std::string::npos ||
          line.find("ThreadSanitizer") != std::string::npos ||
          line.find("runtime error:") != std::string::npos) {
        FAIL_CHECK(label_ << " reported a sanitizer error: " << line);
        break;
      }
    }
  }
  if (starts_ > 0 && CurrentTestFailed()) {
    std::cout << "---- last lines of the log of " << label_ << " ----\n"
              << LogTail() << "---- end of the log of " << label_ << " ----" << std::endl;
  }
}

bool Process::Reap(bool block) {
  if (pid_ <= 0) return true;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  exit_status_ = status;
  pid_ = -1;
  return true;
}

bool Process::running() { return pid_ > 0 && !Reap(false); }

void Process::Start() {
  REQUIRE_MESSAGE(pid_ <= 0, label_ << " is already running");
  std::vector<std::string> argv_strings;
  argv_strings.push_back(binary_);
  argv_strings.insert(argv_strings.end(), args_.begin(), args_.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE_MESSAGE(log_fd >= 0, "open " << log_path_ << ": " << strerror(errno));
  std::string banner = "==== start #" + std::to_string(++starts_) + ":";
  for (const std::string& s : argv_strings) banner += " " + s;
  banner += "\n";
  (void)!::write(log_fd, banner.data(), banner.size());

  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    signal(SIGPIPE, SIG_DFL);  // the harness ignores it; the node must cope on its own
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    execv(argv[0], argv.data());
    static const char kMsg[] = "exec failed\n";
    (void)!::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
    _exit(127);
  }
  ::close(log_fd);
  REQUIRE_MESSAGE(pid > 0, "fork: " << strerror(errno));
  pid_ = pid;
}

int Process::ExitCode() const {
  if (WIFEXITED(exit_status_)) return WEXITSTATUS(exit_status_);
  if (WIFSIGNALED(exit_status_)) return 128 + WTERMSIG(exit_status_);
  return -1;
}

int Process::WaitForExit(int timeout_ms) {
  if (pid_ <= 0) return ExitCode();
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!Reap(false)) {
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ExitCode();
}

int Process::Stop() {
  REQUIRE_MESSAGE(pid_ > 0, label_ << " is not running");
  ::kill(pid_, SIGTERM);
  int code = WaitForExit(10'000);
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    Reap(true);
    FAIL_CHECK(label_ << " did not exit within 10 s of SIGTERM; killed");
    return -1;
  }
  return code;
}

void Process::Kill() {
  REQUIRE_MESSAGE(pid_ > 0, label_ << " is not running");
  ::kill(pid_, SIGKILL);
  Reap(true);
}

std::string Process::LogTail(size_t lines) const {
  std::ifstream in(log_path_, std::ios::binary);
  if (!in) return "(no log at " + log_path_ + ")\n";
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(std::move(line));
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const std::string& l : tail) out += l + "\n";
  return out;
}

std::string Process::DescribeLastExit() const { return DescribeWaitStatus(exit_status_); }

Node::Node(std::string label, std::string shard, std::string address, std::vector<std::string> args,
           std::string log_path)
    : Process(std::move(label), DistkvBinary(), std::move(args), std::move(log_path)),
      shard_(std::move(shard)),
      address_(std::move(address)) {}

void Node::WaitReady() {
  net::ClientOptions options = SyncHttp::DefaultOptions();
  options.connect_timeout_ms = 500;
  options.request_timeout_ms = 1'000;
  SyncHttp http(options);
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);
  Reply last;
  while (Clock::now() < deadline) {
    if (!running()) {
      FAIL(label() << " ended (" << DescribeLastExit() << ") before answering GET /health on "
                   << address_ << "\n---- log ----\n"
                   << LogTail());
    }
    last = http.Get(address_, "/health");
    if (last.status == 200) {
      // Another process on the port would answer too; the shard header says who it is.
      std::string who = last.Header("X-Distkv-Shard");
      REQUIRE_MESSAGE((who.empty() || who == shard_), address_ << " answered /health as shard '"
                                                               << who << "', expected " << shard_);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL(label() << " did not answer GET /health with 200 on " << address_
               << " within 10 s; last: " << last << "\n---- log ----\n"
               << LogTail());
}

// --- TestCluster -------------------------------------------------------------------

TestCluster::TestCluster(ClusterSpec spec) : spec_(std::move(spec)) {
  std::string config = dir_.Sub("sharding.toml");
  WriteFile(config, spec_.ToToml());
  primaries_.resize(spec_.shards.size());
  replicas_.resize(spec_.shards.size());
  for (size_t i = 0; i < spec_.shards.size(); ++i) MakeNodes(i, config);
}

TestCluster::~TestCluster() {
  std::vector<Node*> nodes;
  for (auto& node : primaries_) nodes.push_back(node.get());
  for (auto& group : replicas_) {
    for (auto& node : group) nodes.push_back(node.get());
  }
  for (Node* node : nodes) {
    if (!node->running() || CurrentTestFailed()) continue;  // the destructor kills it
    int code = node->Stop();
    CHECK_MESSAGE(code == 0, node->label()
                                 << " exited " << code << " on SIGTERM at the end of the test");
  }
}

void TestCluster::MakeNodes(size_t shard, const std::string& config_path) {
  const ShardSpec& s = spec_.shards[shard];
  primaries_[shard] =
      std::make_unique<Node>(s.name, s.name, s.address,
                             std::vector<std::string>{"serve", "--config", config_path, "--shard",
                                                      s.name, "--data", dir_.Sub("data-" + s.name)},
                             dir_.Sub(s.name + ".log"));
  replicas_[shard].clear();
  for (size_t k = 0; k < s.replicas.size(); ++k) {
    std::string label = s.name + "-replica-" + std::to_string(k);
    replicas_[shard].push_back(std::make_unique<Node>(
        label, s.name, s.replicas[k],
        std::vector<std::string>{"serve", "--config", config_path, "--shard", s.name, "--replica",
                                 "--data", dir_.Sub("data-" + label), "--listen", s.replicas[k]},
        dir_.Sub(label + ".log")));
  }
}

void TestCluster::UseConfigFor(size_t shard, const ClusterSpec& spec) {
  std::string config = dir_.Sub("sharding-" + spec_.shards.at(shard).name + ".toml");
  WriteFile(config, spec.ToToml());
  MakeNodes(shard, config);
}

void TestCluster::Start() {
  for (auto& node : primaries_) node->Start();
  for (auto& group : replicas_) {
    for (auto& node : group) node->Start();
  }
  for (auto& node : primaries_) node->WaitReady();
  for (auto& group : replicas_) {
    for (auto& node : group) node->WaitReady();
  }
}

bool ParseEtag(std::string_view etag, uint64_t* lsn) {
  if (etag.size() < 3 || etag.front() != '"' || etag.back() != '"') return false;
  const std::optional<uint64_t> value = ParseEtagNumber(etag);
  if (!value) return false;
  *lsn = *value;
  return true;
}

std::vector<std::string> TestCluster::KeysOf(size_t owner, size_t n,
                                             const std::string& prefix) const {
  std::vector<std::string> keys;
  for (size_t i = 0; keys.size() < n; ++i) {
    std::string key = prefix + std::to_string(i);
    if (OwnerOf(key) == owner) keys.push_back(key);
  }
  return keys;
}

Etcd::Etcd(const TempDir& dir, int client_port, int peer_port)
    : Process("etcd", "/usr/bin/etcd",
              {"--name", "distkv-test", "--data-dir", dir.Sub("etcd-data"), "--listen-client-urls",
               "http://127.0.0.1:" + std::to_string(client_port), "--advertise-client-urls",
               "http://127.0.0.1:" + std::to_string(client_port), "--listen-peer-urls",
               "http://127.0.0.1:" + std::to_string(peer_port), "--initial-advertise-peer-urls",
               "http://127.0.0.1:" + std::to_string(peer_port), "--initial-cluster",
               "distkv-test=http://127.0.0.1:" + std::to_string(peer_port)},
              dir.Sub("etcd.log")),
      address_("127.0.0.1:" + std::to_string(client_port)) {}

void Etcd::StartAndWait() {
  Start();
  SyncHttp http;
  bool up = WaitUntil([&] { return http.Get(address_, "/health").status == 200; }, 20'000, 50);
  REQUIRE_MESSAGE(up, "etcd did not start:\n" << LogTail());
}

EtcdCluster::EtcdCluster(size_t shards, size_t replicas, int min_acks, int lease_ttl_ms,
                         const std::function<void(ClusterSpec&)>& adjust)
    : ports(FreePorts(2)), etcd(dir, ports[0], ports[1]), spec(LocalCluster(shards, replicas)) {
  etcd.StartAndWait();
  spec.settings["coordinator"]["etcd"] = "[\"" + etcd.address() + "\"]";
  spec.Set("coordinator", "lease_ttl_ms", lease_ttl_ms);
  if (min_acks > 0) spec.Set("replication", "min_acks", min_acks);
  if (adjust) adjust(spec);
  cluster = std::make_unique<TestCluster>(spec);
  cluster->Start();
}

std::string EtcdMapText(SyncHttp& http, const std::string& etcd, const std::string& prefix) {
  Reply r = http.Send(etcd, "POST", "/v3/kv/range",
                      "{\"key\":\"" + Base64Encode(prefix + "/map") + "\"}");
  Json j;
  if (r.status != 200 || !ParseJson(r.body, &j)) return "";
  const Json* kvs = JsonField(j, "kvs");
  if (!kvs || !kvs->is_array() || kvs->empty()) return "";
  const Json* value = JsonField((*kvs)[0], "value");
  std::string text;
  if (!value || !value->is_string() || !Base64Decode(value->get<std::string>(), &text)) {
    return "";
  }
  return text;
}

MapView ParseMapText(const std::string& text) {
  MapView view;
  view.owner.assign(kSlots, "");
  std::istringstream in(text);
  std::string line, shard;
  while (std::getline(in, line)) {
    if (line.rfind("epoch = ", 0) == 0) {
      view.epoch = std::strtoull(line.c_str() + 8, nullptr, 10);
    } else if (line.rfind("migrations = ", 0) == 0) {
      for (size_t at = line.find("{id ="); at != std::string::npos; at = line.find("{id =", at + 1))
        view.migrations++;
    } else if (line.rfind("name = \"", 0) == 0) {
      shard = line.substr(8, line.rfind('"') - 8);
    } else if (line.rfind("slots = [", 0) == 0) {
      // [[a, b], [c, d]]
      const char* p = line.c_str() + 9;
      char* end = nullptr;
      while ((p = std::strchr(p, '[')) != nullptr) {
        const size_t first = std::strtoul(p + 1, &end, 10);
        const size_t last = std::strtoul(end + 1, &end, 10);
        for (size_t slot = first; slot <= last && slot < kSlots; ++slot) {
          view.owner[slot] = view.owner[slot].empty() ? shard : "*";
        }
        p = end;
      }
    }
  }
  return view;
}

}  // namespace distkv::clustertest
