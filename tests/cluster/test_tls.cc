#include "tests/cluster/test_tls.h"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include <doctest/doctest.h>

namespace distkv::clustertest {

namespace {

void Run(const std::string& command) {
  const std::string quiet = command + " >/dev/null 2>&1";
  if (std::system(quiet.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

// A key and a certificate for 127.0.0.1 signed by ca (self-signed: ca empty).
void MakeCert(const std::string& dir, const std::string& name, const std::string& ca_name,
              const std::string& validity) {
  const std::string base = dir + "/" + name;
  Run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + base +
      ".key -out " + base + ".csr -subj /CN=" + name);
  const std::string ext = base + ".ext";
  std::ofstream(ext) << "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:"
                     << (ca_name.empty() ? "TRUE" : "FALSE") << "\n";
  const std::string signer = ca_name.empty() ? "-signkey " + base + ".key"
                                             : "-CA " + dir + "/" + ca_name + ".crt -CAkey " + dir +
                                                   "/" + ca_name + ".key -CAcreateserial";
  Run("openssl x509 -req -in " + base + ".csr " + signer + " -out " + base + ".crt " + validity +
      " -extfile " + ext);
}

struct CertDir {
  CertDir() {
    char tmpl[] = "/tmp/distkv-certs-XXXXXX";
    const char* d = mkdtemp(tmpl);
    if (d == nullptr) throw std::runtime_error("mkdtemp failed");
    certs.dir = d;
    const std::string& dir = certs.dir;
    MakeCert(dir, "ca", "", "-days 2");
    MakeCert(dir, "node", "ca", "-days 2");
    // Expired a day ago (x509 -days takes a negative count).
    MakeCert(dir, "expired", "ca", "-days -1");
    MakeCert(dir, "rogue-ca", "", "-days 2");
    MakeCert(dir, "rogue", "rogue-ca", "-days 2");
    certs.ca = dir + "/ca.crt";
    certs.cert = dir + "/node.crt";
    certs.key = dir + "/node.key";
    certs.expired_cert = dir + "/expired.crt";
    certs.expired_key = dir + "/expired.key";
    certs.rogue_cert = dir + "/rogue.crt";
    certs.rogue_key = dir + "/rogue.key";
  }
  ~CertDir() { std::system(("rm -rf " + certs.dir).c_str()); }
  TestCerts certs;
};

}  // namespace

const TestCerts& Certs() {
  static CertDir made;  // once per process, removed at exit
  return made.certs;
}

bool TlsEverywhere() {
  const char* v = std::getenv("DISTKV_TEST_TLS");
  return v != nullptr && std::string(v) == "1";
}

std::string TlsSection(const std::string& cert, const std::string& key, const std::string& ca) {
  return "cert = \"" + cert + "\"\nkey = \"" + key + "\"\nca = \"" + ca + "\"\n";
}

std::shared_ptr<net::TlsContext> TestClientTls(const std::string& cert, const std::string& key) {
  net::TlsFiles files;
  files.ca = Certs().ca;
  files.cert = cert;
  files.key = key;
  std::string error;
  std::shared_ptr<net::TlsContext> ctx = net::TlsContext::NewClient(files, &error);
  REQUIRE_MESSAGE(ctx != nullptr, error);
  return ctx;
}

}  // namespace distkv::clustertest
