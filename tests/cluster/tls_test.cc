// TLS through real processes ([tls] in sharding.toml), beyond what running
// the API, sharding and replication tests with DISTKV_TEST_TLS=1 shows:
// plain HTTP to the HTTPS port is answered with a plain 400 and a close; a
// peer with an expired certificate and a client with an untrusted one are
// refused, each with a log line saying why; fuzzed and truncated TLS records
// (a mutated ClientHello, corrupt records after a real handshake, records
// cut short) end their connection and nothing else (make test-asan runs this
// under AddressSanitizer).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <random>

#include <doctest/doctest.h>

#include "net/tls_session.h"
#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/raw_http.h"

namespace distkv::clustertest {
namespace {

void SetTls(ClusterSpec* spec, const std::string& cert, const std::string& key) {
  spec->SetString("tls", "cert", cert);
  spec->SetString("tls", "key", key);
  spec->SetString("tls", "ca", Certs().ca);
}

// A TCP socket to "127.0.0.1:port", blocking, or -1.
int Dial(const std::string& address) {
  const int port = std::atoi(address.substr(address.rfind(':') + 1).c_str());
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads within timeout_ms: bytes appended to *in; false on EOF, error or timeout.
bool ReadSome(int fd, std::string* in, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char buf[16384];
  const ssize_t n = recv(fd, buf, sizeof(buf), 0);
  if (n <= 0) return false;
  in->append(buf, static_cast<size_t>(n));
  return true;
}

// True if the peer closes the connection within timeout_ms (whatever it
// sends first, an alert say).
bool ClosedByPeer(int fd, int timeout_ms) {
  std::string ignored;
  for (int i = 0; i < 100; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;
  }
  return false;
}

// A TLS client driven by hand over fd, so a test can damage what it sends.
bool Handshake(int fd, net::TlsSession* tls) {
  std::string out, plain;
  if (!tls->Start(&out) || !WriteAll(fd, out)) return false;
  while (!tls->established()) {
    std::string in;
    if (!ReadSome(fd, &in, 5000)) return false;
    out.clear();
    if (!tls->Receive(in.data(), in.size(), &plain, &out) || !WriteAll(fd, out)) return false;
  }
  return true;
}

TEST_CASE("tls: plain HTTP to the HTTPS port gets a plain 400, then the connection closes") {
  TlsOn tls;
  TestCluster cluster(LocalCluster(1));
  cluster.Start();
  RawConnection raw;
  REQUIRE(raw.Connect(cluster.address(0)));
  raw.Exchange(RawRequest("GET", "/health"), 1, 5000);
  REQUIRE(raw.responses().size() == 1);
  CHECK(raw.responses()[0].status == 400);
  CHECK(raw.responses()[0].body.find("\"https_required\"") != std::string::npos);
  CHECK(raw.WaitForClose(5000));
  SyncHttp http;  // HTTPS still works
  CHECK(http.Get(cluster.address(0), "/health").status == 200);
}

TEST_CASE("tls: redirects and a replica's 403 name https:// Locations that serve the key") {
  TlsOn tls;
  ClusterSpec spec = LocalCluster(2, 1);
  spec.routing = "redirect";
  TestCluster cluster(spec);
  cluster.Start();
  SyncHttp http;
  std::string key;
  for (int i = 0; cluster.OwnerOf(key) != 1 || key.empty(); ++i)
    key = "tls-loc-" + std::to_string(i);

  Reply put = http.Send(cluster.address(0), "PUT", "/kv/" + key, "over https");
  CHECK_MESSAGE(put.status == 307, put);
  const std::string owner_url = "https://" + cluster.address(1) + "/kv/" + key;
  CHECK(put.Header("Location") == owner_url);
  Reply replayed =
      http.Send(cluster.address(1), "PUT", owner_url.substr(owner_url.find("/kv/")), "over https");
  CHECK_MESSAGE(Is2xx(replayed.status), replayed);

  // A write to shard 0's replica points at its primary, over HTTPS too.
  std::string own;
  for (int i = 0; cluster.OwnerOf(own) != 0 || own.empty(); ++i)
    own = "tls-own-" + std::to_string(i);
  Reply refused = http.Send(cluster.replica(0).address(), "PUT", "/kv/" + own, "x");
  CHECK_MESSAGE(refused.status == 403, refused);
  CHECK(refused.Header("Location") == "https://" + cluster.address(0) + "/kv/" + own);
}

TEST_CASE("tls: a peer with an expired certificate is refused, with a log line") {
  TlsOn tls;
  ClusterSpec spec = LocalCluster(2);
  TestCluster cluster(spec);
  ClusterSpec expired = spec;
  SetTls(&expired, Certs().expired_cert, Certs().expired_key);
  cluster.UseConfigFor(1, expired);
  cluster.primary(0).StartAndWait();
  cluster.primary(1).Start();  // its certificate fails the harness's own check too

  std::string key;
  for (int i = 0; key.empty(); ++i) {
    if (cluster.OwnerOf("x" + std::to_string(i)) == 1) key = "x" + std::to_string(i);
  }
  SyncHttp http;
  Reply r;
  // Until shard 1 listens the forward is refused by TCP; then by TLS.
  CHECK(WaitUntil(
      [&] {
        r = http.Send(cluster.address(0), "PUT", "/kv/" + key, "v");
        return r.body.find("certificate has expired") != std::string::npos;
      },
      10000, 100));
  CHECK_MESSAGE(r.status == 503, r);
  CHECK(cluster.primary(0).LogTail(200).find("certificate verification failed: certificate has "
                                             "expired") != std::string::npos);
}

TEST_CASE("tls: with verify_clients, an untrusted or missing client certificate is refused") {
  TlsOn tls;
  ClusterSpec spec = LocalCluster(1);
  SetTls(&spec, Certs().cert, Certs().key);
  spec.settings["tls"]["verify_clients"] = "true";
  TestCluster cluster(spec);
  cluster.Start();  // the harness presents the CA's node certificate
  const std::string node = cluster.address(0);

  net::ClientOptions rogue_options = SyncHttp::DefaultOptions();
  rogue_options.tls = TestClientTls(Certs().rogue_cert, Certs().rogue_key);
  SyncHttp rogue(rogue_options);
  Reply r = rogue.Get(node, "/health");
  CHECK_MESSAGE(r.status == 0, r);

  net::ClientOptions anonymous_options = SyncHttp::DefaultOptions();
  anonymous_options.tls = TestClientTls();
  SyncHttp anonymous(anonymous_options);
  r = anonymous.Get(node, "/health");
  CHECK_MESSAGE(r.status == 0, r);

  SyncHttp trusted;
  CHECK(trusted.Get(node, "/health").status == 200);
  CHECK(WaitUntil(
      [&] {
        const std::string log = cluster.primary(0).LogTail(200);
        return log.find("failed: certificate verification failed") != std::string::npos &&
               log.find("peer did not return a certificate") != std::string::npos;
      },
      5000));
}

TEST_CASE("tls: fuzzed and truncated TLS records end their connection, never the node") {
  TlsOn tls;
  ClusterSpec spec = LocalCluster(1);
  // A damaged length may leave the node waiting for bytes that never come:
  // the header timeout ends those connections.
  spec.Set("server", "header_timeout_ms", 1000);
  TestCluster cluster(spec);
  cluster.Start();
  const std::string node = cluster.address(0);
  std::mt19937 rng(17);
  auto mutate = [&](std::string bytes, size_t skip) {
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      bytes[skip + rng() % (bytes.size() - skip)] ^= static_cast<char>(1 + rng() % 255);
    }
    return bytes;
  };

  // A real ClientHello, damaged or cut short.
  std::string hello;
  {
    net::TlsSession client(TestClientTls(), "127.0.0.1");
    REQUIRE(client.Start(&hello));
  }
  for (int i = 0; i < 40; ++i) {
    const int fd = Dial(node);
    REQUIRE(fd >= 0);
    std::string bytes = i % 2 == 0 ? mutate(hello, 0) : hello.substr(0, rng() % hello.size());
    WriteAll(fd, bytes);
    if (i % 2 == 1) shutdown(fd, SHUT_WR);  // truncated: the peer sees the end
    CHECK(ClosedByPeer(fd, 12000));
    close(fd);
  }

  // After a real handshake: a damaged record, a record cut short, random bytes.
  for (int i = 0; i < 30; ++i) {
    const int fd = Dial(node);
    REQUIRE(fd >= 0);
    net::TlsSession client(TestClientTls(Certs().cert, Certs().key), "127.0.0.1");
    REQUIRE(Handshake(fd, &client));
    std::string record;
    const std::string request = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(client.Send(request.data(), request.size(), &record));
    if (i % 3 == 0) {
      WriteAll(fd, mutate(record, 5));  // past the header: a record that fails to decrypt
    } else if (i % 3 == 1) {
      WriteAll(fd, record.substr(0, 1 + rng() % (record.size() - 1)));
      shutdown(fd, SHUT_WR);
    } else {
      std::string noise(1 + rng() % 2000, '\0');
      for (char& c : noise) c = static_cast<char>(rng());
      WriteAll(fd, noise);
      shutdown(fd, SHUT_WR);
    }
    CHECK(ClosedByPeer(fd, 12000));
    close(fd);
  }

  SyncHttp http;
  CHECK(http.Get(node, "/health").status == 200);
  CHECK(cluster.primary(0).running());
  CHECK(cluster.primary(0).LogTail(400).find("TLS with 127.0.0.1:") != std::string::npos);
}

}  // namespace
}  // namespace distkv::clustertest
