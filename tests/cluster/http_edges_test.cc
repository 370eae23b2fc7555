// The node at the edges of HTTP, end to end: a client that half-closes,
// revalidation with If-None-Match (direct and forwarded), the longest key
// fully %-escaped, and a SIGTERM while a client does not read its answer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/raw_http.h"

namespace distkv::clustertest {
namespace {

// A blocking socket to "127.0.0.1:port" with a small receive buffer.
int ConnectSmall(const std::string& address, int rcvbuf) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

TEST_CASE("http edges: a PUT sent then half-closed (nc -N) is applied and answered") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  const int fd = ConnectSmall(cluster.address(0), 0);
  const std::string put = RawRequest("PUT", "/kv/half", "closed");
  REQUIRE(::send(fd, put.data(), put.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(put.size()));
  REQUIRE(::shutdown(fd, SHUT_WR) == 0);
  const std::string answer = ReadAll(fd);
  ::close(fd);
  CHECK_MESSAGE(answer.rfind("HTTP/1.1 201", 0) == 0, answer);
  SyncHttp http;
  CHECK(http.Get(cluster.address(0), "/kv/half").body == "closed");
}

TEST_CASE("http edges: GET with a matching If-None-Match is 304, direct and forwarded") {
  ClusterSpec spec = LocalCluster(2);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  std::string key;
  for (size_t i = 0; key.empty(); ++i) {
    if (spec.OwnerOf("inm-" + std::to_string(i)) == 1) key = "inm-" + std::to_string(i);
  }
  SyncHttp http;
  const Reply put = http.Send(cluster.address(1), "PUT", "/kv/" + key, "cached");
  REQUIRE(Is2xx(put.status));
  const std::string etag = put.Header("ETag");
  REQUIRE(!etag.empty());
  for (size_t via : {1, 0}) {  // the owner, then a node that forwards
    CAPTURE(via);
    const Reply same =
        http.Get(cluster.address(via), "/kv/" + key, {{"If-None-Match", "\"999998\", " + etag}});
    CHECK_MESSAGE(same.status == 304, same);
    CHECK(same.body.empty());
    CHECK(same.Header("ETag") == etag);
    const Reply other =
        http.Get(cluster.address(via), "/kv/" + key, {{"If-None-Match", "\"999999\""}});
    CHECK_MESSAGE(other.status == 200, other);
    CHECK(other.body == "cached");
  }
  const Reply bad = http.Get(cluster.address(0), "/kv/" + key + "?ack=banana");
  CHECK_MESSAGE(bad.status == 400, bad);
  CHECK(bad.body.find("ack=banana") != std::string::npos);
}

TEST_CASE("http edges: a 4096-byte key that needs %-escaping everywhere is addressable") {
  ClusterSpec spec = LocalCluster(2);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  const std::string key(4096, '/');  // every byte becomes %2F: a 12,292-byte path
  SyncHttp http;
  const size_t owner = spec.OwnerOf(key);
  const Reply put = http.Send(cluster.address(1 - owner), "PUT", "/kv/" + PercentEncode(key), "v");
  CHECK_MESSAGE(Is2xx(put.status), put);
  for (size_t via : {0, 1}) {
    const Reply get = http.Get(cluster.address(via), "/kv/" + PercentEncode(key));
    CHECK_MESSAGE(get.status == 200, get);
    CHECK(get.body == "v");
  }
}

TEST_CASE("http edges: SIGTERM with a client that does not read ends within shutdown_timeout_ms") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  spec.Set("server", "shutdown_timeout_ms", 500);
  TestCluster cluster(spec);
  cluster.Start();
  SyncHttp http;
  REQUIRE(Is2xx(http.Send(cluster.address(0), "PUT", "/kv/big", std::string(8 << 20, 'b')).status));
  const int fd = ConnectSmall(cluster.address(0), 4096);
  std::string gets;
  for (int i = 0; i < 4; ++i) gets += RawRequest("GET", "/kv/big");
  REQUIRE(::send(fd, gets.data(), gets.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(gets.size()));
  // The node has the answers queued and the client reads nothing. Stop()
  // fails the test if the node needs more than 10 s (the idle timeout is 60).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let it queue the answers
  CHECK(cluster.primary(0).Stop() == 0);
  ::close(fd);
}

}  // namespace
}  // namespace distkv::clustertest
