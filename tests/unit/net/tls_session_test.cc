// TlsSession with no sockets: a client and a server session hand their
// ciphertext to each other in memory, whole, byte by byte, damaged or cut.
#include "net/tls_session.h"

#include <cstdlib>
#include <random>
#include <string>

#include <doctest/doctest.h>

using distkv::net::TlsContext;
using distkv::net::TlsFiles;
using distkv::net::TlsSession;

namespace {

// A CA and a certificate for 127.0.0.1 it signed, made with openssl.
struct Certs {
  Certs() {
    char tmpl[] = "/tmp/distkv-tls-unit-XXXXXX";
    dir = mkdtemp(tmpl);
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    const std::string cmd = "cd " + dir + " && openssl req -x509" + ec +
                            "-days 2 -keyout ca.key -out ca.crt -subj /CN=ca" +
                            " && openssl req -new" + ec + "-keyout n.key -out n.csr -subj /CN=n" +
                            " && printf 'subjectAltName=IP:127.0.0.1\\n' > san && openssl x509 "
                            "-req -in n.csr -CA ca.crt" +
                            " -CAkey ca.key -CAcreateserial -days 2 -extfile san -out n.crt";
    ok = std::system(("(" + cmd + ") >/dev/null 2>&1").c_str()) == 0;
    files.cert = dir + "/n.crt";
    files.key = dir + "/n.key";
    files.ca = dir + "/ca.crt";
  }
  ~Certs() { std::system(("rm -rf " + dir).c_str()); }
  std::string dir;
  bool ok = false;
  TlsFiles files;
};

struct Pair {
  explicit Pair(const TlsFiles& files, const std::string& host = "127.0.0.1") {
    std::string error;
    server_ctx = TlsContext::NewServer(files, false, &error);
    client_ctx = TlsContext::NewClient(files, &error);
    REQUIRE_MESSAGE((server_ctx && client_ctx), error);
    server = std::make_unique<TlsSession>(server_ctx);
    client = std::make_unique<TlsSession>(client_ctx, host);
  }
  // Moves ciphertext both ways until neither side has anything to say.
  bool Pump(std::string to_server, size_t piece = 0) {
    std::string to_client;
    for (int round = 0; round < 20 && (!to_server.empty() || !to_client.empty()); ++round) {
      std::string next_to_client;
      for (size_t at = 0; at < to_server.size();) {
        const size_t n = piece == 0 ? to_server.size() : std::min(piece, to_server.size() - at);
        if (!server->Receive(to_server.data() + at, n, &server_plain, &next_to_client))
          return false;
        at += n;
      }
      to_server.clear();
      to_client += next_to_client;
      if (!to_client.empty() &&
          !client->Receive(to_client.data(), to_client.size(), &client_plain, &to_server)) {
        return false;
      }
      to_client.clear();
    }
    return true;
  }
  std::shared_ptr<TlsContext> server_ctx, client_ctx;
  std::unique_ptr<TlsSession> server, client;
  std::string server_plain, client_plain;
};

}  // namespace

TEST_CASE("TlsSession: handshake and data both ways, also fed a byte at a time") {
  Certs certs;
  REQUIRE(certs.ok);
  for (size_t piece : {size_t{0}, size_t{1}, size_t{7}}) {
    Pair p(certs.files);
    std::string hello;
    REQUIRE(p.client->Start(&hello));
    REQUIRE(p.Pump(hello, piece));
    CHECK(p.client->established());
    CHECK(p.server->established());
    std::string records;
    const std::string request = "GET /kv/a HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(p.client->Send(request.data(), request.size(), &records));
    REQUIRE(p.Pump(records, piece));
    CHECK(p.server_plain == request);
    std::string answer(100000, 'v');  // several records
    records.clear();
    REQUIRE(p.server->Send(answer.data(), answer.size(), &records));
    std::string ignored;
    REQUIRE(p.client->Receive(records.data(), records.size(), &p.client_plain, &ignored));
    CHECK(p.client_plain == answer);
  }
}

TEST_CASE("TlsSession: a certificate for another address is refused by the client") {
  Certs certs;
  REQUIRE(certs.ok);
  Pair p(certs.files, "127.0.0.2");
  std::string hello;
  REQUIRE(p.client->Start(&hello));
  CHECK_FALSE(p.Pump(hello));
  CHECK(p.client->error().find("certificate verification failed") != std::string::npos);
}

TEST_CASE("TlsSession: damaged or non-TLS input fails cleanly, never crashes") {
  Certs certs;
  REQUIRE(certs.ok);
  {
    Pair p(certs.files);
    std::string plain, out;
    CHECK_FALSE(p.server->Receive("GET / HTTP/1.1\r\n", 16, &plain, &out));
    CHECK(p.server->plain_http());
  }
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    Pair p(certs.files);
    std::string hello;
    REQUIRE(p.client->Start(&hello));
    REQUIRE(p.Pump(hello));
    std::string records;
    REQUIRE(p.client->Send("0123456789abcdef", 16, &records));
    records[5 + rng() % (records.size() - 5)] ^= static_cast<char>(1 + rng() % 255);
    std::string plain, out;
    CHECK_FALSE(p.server->Receive(records.data(), records.size(), &plain, &out));
    CHECK(plain.empty());
    CHECK_FALSE(p.server->error().empty());
  }
  for (int i = 0; i < 200; ++i) {  // a mutated ClientHello: refused or waiting, no more
    Pair p(certs.files);
    std::string hello;
    REQUIRE(p.client->Start(&hello));
    hello[1 + rng() % (hello.size() - 1)] ^= static_cast<char>(1 + rng() % 255);
    std::string plain, out;
    p.server->Receive(hello.data(), hello.size(), &plain, &out);
    CHECK(plain.empty());
  }
}

TEST_CASE("TlsSession: record buffers released between records, and inside one, lose nothing") {
  Certs certs;
  REQUIRE(certs.ok);
  Pair p(certs.files);
  std::string hello;
  REQUIRE(p.client->Start(&hello));
  REQUIRE(p.Pump(hello));
  REQUIRE(p.server->buffers_held());
  const std::string request = "PUT /kv/a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  for (size_t split : {size_t{0}, size_t{3}, size_t{20}}) {
    std::string records, out;
    REQUIRE(p.client->Send(request.data(), request.size(), &records));
    p.server_plain.clear();
    // Part of a record arrives, the connection goes idle, the rest arrives.
    REQUIRE(p.server->Receive(records.data(), split, &p.server_plain, &out));
    p.server->ReleaseBuffers();
    CHECK_FALSE(p.server->buffers_held());
    REQUIRE(
        p.server->Receive(records.data() + split, records.size() - split, &p.server_plain, &out));
    CHECK(p.server->buffers_held());
    CHECK(p.server_plain == request);
    // And the answer, after another idle spell.
    p.server->ReleaseBuffers();
    const std::string answer = "HTTP/1.1 204 No Content\r\n\r\n";
    records.clear();
    REQUIRE(p.server->Send(answer.data(), answer.size(), &records));
    p.client_plain.clear();
    REQUIRE(p.client->Receive(records.data(), records.size(), &p.client_plain, &out));
    CHECK(p.client_plain == answer);
  }
}
