// What the cluster tests ask of running nodes: JSON pages and fields, digests,
// epochs, key counts, the lost/ folder, reads checked against what was
// written, and the deposed-primary set-up several failover tests share. The
// processes themselves (TestCluster, Node, Etcd) are in harness.cc.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"

namespace distkv::clustertest {

// --- JSON helpers ---------------------------------------------------------------------

Json GetJson(SyncHttp& http, const std::string& address, const std::string& target,
             std::vector<net::Header> headers) {
  Reply reply = http.Get(address, target, std::move(headers));
  REQUIRE_MESSAGE(reply.status == 200, "GET " << target << " on " << address << ": " << reply);
  Json json;
  std::string error;
  REQUIRE_MESSAGE(ParseJson(reply.body, &json, &error), "GET " << target << " on " << address
                                                               << " is not JSON (" << error
                                                               << "): " << reply.body);
  return json;
}

int64_t JsonInt(const Json& object, std::string_view field) {
  const Json* value = JsonField(object, field);
  REQUIRE_MESSAGE((value != nullptr && value->is_number()),
                  "no number field \"" << std::string(field) << "\"");
  return value->is_number_integer() ? value->get<int64_t>()
                                    : static_cast<int64_t>(value->get<double>());
}

std::string JsonText(const Json& object, std::string_view field) {
  const Json* value = JsonField(object, field);
  REQUIRE_MESSAGE((value != nullptr && value->is_string()),
                  "no string field \"" << std::string(field) << "\"");
  return value->get<std::string>();
}

bool IsJsonError(std::string_view body) {
  Json json;
  if (!ParseJson(body, &json)) return false;
  const Json* error = JsonField(json, "error");
  const Json* message = JsonField(json, "message");
  return error != nullptr && error->is_string() && !error->get<std::string>().empty() &&
         message != nullptr && message->is_string() && !message->get<std::string>().empty();
}

bool IsJsonError(const Reply& reply) { return IsJsonError(reply.body); }

std::string DigestOf(SyncHttp& http, const std::string& address) {
  Reply r = http.Get(address, "/internal/digest");
  Json j;
  if (r.status != 200 || !ParseJson(r.body, &j)) return "unreachable";
  return std::to_string(j.at("keys").get<uint64_t>()) + "/" + j.at("digest").get<std::string>();
}

std::string LostText(const std::string& data_dir) {
  std::string lost;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_dir + "/lost", ec)) {
    if (e.path().extension() != ".log") continue;
    std::ifstream in(e.path(), std::ios::binary);
    lost.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return lost;
}

std::string NewestSegmentOf(const std::string& data_dir) {
  std::string newest;
  for (const auto& e : std::filesystem::directory_iterator(data_dir)) {
    const std::string path = e.path().string();
    if (e.path().extension() == ".seg" && path > newest) newest = path;
  }
  return newest;
}

uint64_t SegmentBytesOf(const std::string& data_dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_dir, ec)) {
    if (e.path().extension() == ".seg") n += e.file_size();
  }
  return n;
}

uint64_t RecordBytesOf(const std::string& segment) {
  const std::string bytes = ReadFile(segment);
  // A record never ends in a zero byte it could be confused with: it ends
  // in its value or key, and the tests' values and keys hold no zero bytes.
  const size_t last = bytes.find_last_not_of('\0');
  return last == std::string::npos ? 0 : last + 1;
}

uint64_t EpochOf(SyncHttp& http, const std::string& address) {
  Reply r = http.Get(address, "/cluster");
  Json j;
  if (r.status != 200 || !ParseJson(r.body, &j)) return 0;
  return j.at("epoch").get<uint64_t>();
}

uint64_t DeposePrimaryWhileDown(TestCluster& cluster, SyncHttp& http, int keys,
                                const std::string& value,
                                const std::vector<std::string>& restart_args) {
  Node& old_primary = cluster.primary(0);
  Node& first = cluster.replica(0, 0);
  Node& second = cluster.replica(0, 1);
  for (int i = 0; i < keys; ++i) {
    Reply r = http.Send(old_primary.address(), "PUT", "/kv/k" + std::to_string(i), value);
    REQUIRE_MESSAGE(Is2xx(r.status), r);
  }
  const int64_t lsn = JsonInt(GetJson(http, old_primary.address(), "/stats"), "last_lsn");
  for (Node* n : {&first, &second}) {
    REQUIRE(WaitUntil(
        [&] { return JsonInt(GetJson(http, n->address(), "/stats"), "durable_lsn") == lsn; },
        30'000));
  }

  // The primary is down during the promotion (a paused one would find the
  // pushed map waiting in its socket when it wakes).
  old_primary.Kill();
  Reply promote = http.Send(first.address(), "POST", "/admin/promote");
  REQUIRE_MESSAGE(Is2xx(promote.status), promote);
  REQUIRE(WaitUntil([&] { return EpochOf(http, second.address()) == 1; }, 30'000));
  REQUIRE(Is2xx(http.Send(first.address(), "PUT", "/kv/epoch-1", "one").status));
  REQUIRE(
      WaitUntil([&] { return http.Get(second.address(), "/kv/epoch-1").status == 200; }, 30'000));

  // Every node that knows epoch 1 pauses; the old primary comes back knowing
  // only epoch 0 and still takes writes (no coordinator fences it).
  REQUIRE(::kill(first.pid(), SIGSTOP) == 0);
  REQUIRE(::kill(second.pid(), SIGSTOP) == 0);
  for (const std::string& a : restart_args) old_primary.args().push_back(a);
  old_primary.StartAndWait();
  Reply late = http.Send(old_primary.address(), "PUT", "/kv/deposed-write", "d");
  REQUIRE_MESSAGE(Is2xx(late.status), late);
  return static_cast<uint64_t>(lsn);
}

int RunDistkv(const TempDir& dir, const std::string& label, std::vector<std::string> args,
              int timeout_ms) {
  Process p(label, DistkvBinary(), std::move(args), dir.Sub(label + ".log"));
  p.Start();
  int code = p.WaitForExit(timeout_ms);
  if (code != 0) MESSAGE(label << " exited " << code << ":\n" << p.LogTail());
  return code;
}

int64_t KeysOn(SyncHttp& http, const std::string& address) {
  Reply r = http.Get(address, "/stats");
  Json j;
  if (r.status != 200 || !ParseJson(r.body, &j) || !JsonField(j, "keys")) return -1;
  return j.at("keys").get<int64_t>();
}

size_t CheckReadsAsWritten(SyncHttp& http, const std::map<std::string, std::string>& expect,
                           const std::vector<std::string>& via) {
  size_t live = 0;
  for (const auto& [key, value] : expect) {
    live += !value.empty();
    for (const std::string& node : via) {
      Reply r = http.Get(node, "/kv/" + key);
      CAPTURE(key);
      CAPTURE(node);
      if (value.empty()) {
        CHECK(r.status == 404);
      } else {
        CHECK(r.status == 200);
        CHECK(r.body == value);
      }
    }
  }
  return live;
}

}  // namespace distkv::clustertest
