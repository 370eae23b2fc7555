// Certificates for the TLS tests, made with the openssl command: a CA, a
// node certificate it signed for 127.0.0.1, an expired one and one from a
// CA nobody trusts. Elliptic-curve keys keep making them quick.
//
// DISTKV_TEST_TLS=1 runs the whole cluster suite over TLS: every cluster
// the harness writes gets a [tls] section with these files, and every
// SyncHttp speaks HTTPS and checks the node's certificate against the CA.
// make test runs the API, sharding and replication tests this way too.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include "net/tls_context.h"

namespace distkv::clustertest {

struct TestCerts {
  std::string dir;
  std::string ca;                         // the cluster's CA certificate
  std::string cert, key;                  // a node certificate for 127.0.0.1, signed by ca
  std::string expired_cert, expired_key;  // signed by ca, no longer valid
  std::string rogue_cert, rogue_key;      // for 127.0.0.1, signed by another CA
};

// Made once per test process (in a directory removed at exit).
const TestCerts& Certs();

// True when DISTKV_TEST_TLS=1.
bool TlsEverywhere();

// Turns DISTKV_TEST_TLS on for one test: the harness then writes [tls] into
// every config (unless the test sets its own) and SyncHttp speaks HTTPS.
class TlsOn {
 public:
  TlsOn() : was_(TlsEverywhere()) { setenv("DISTKV_TEST_TLS", "1", 1); }
  ~TlsOn() {
    if (!was_) unsetenv("DISTKV_TEST_TLS");
  }
  TlsOn(const TlsOn&) = delete;
  TlsOn& operator=(const TlsOn&) = delete;

 private:
  bool was_;
};

// The [tls] section's lines for these certificates.
std::string TlsSection(const std::string& cert, const std::string& key, const std::string& ca);

// A client context that trusts the test CA and presents cert/key (optional).
std::shared_ptr<net::TlsContext> TestClientTls(const std::string& cert = "",
                                               const std::string& key = "");

}  // namespace distkv::clustertest
