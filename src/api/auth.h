// Authentication and roles: who sent a request, and may they do what it asks.
//
// Clients send `Authorization: Bearer <token>`; [auth] in sharding.toml gives
// each token a role. Roles are ordered, each one holding the rights of those
// below it:
//   read   GET of keys, scans (GET /kv), POST /kv/_mget, and (by default)
//          /stats, /metrics, /cluster
//   write  + PUT and DELETE of keys, POST /kv/_mput
//   admin  + /admin/* and /internal/digest
//   node   + /internal/replicate, /internal/replica-ack, /internal/scan and
//          /internal/cluster-map
// `node` is never a token's role: it belongs to whoever presents the cluster
// secret, i.e. the other nodes. A node that forwards a client's request
// presents the secret and names the client's role in X-Distkv-Role; the owner
// then grants that role, not `node`, so a read token cannot write by sending
// its write to a node that does not own the key.
//
// Without a valid token the answer is 401 with WWW-Authenticate (RFC 6750);
// with a valid one whose role is too weak, 403. Secrets are compared in
// constant time (every configured secret is compared in full, whatever
// matches), and nothing here ever logs or echoes one.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/http_message.h"
#include "src/api/kv_request.h"

namespace distkv {

enum class Role { kNone = 0, kRead, kWrite, kAdmin, kNode };

std::string_view RoleName(Role role);
// "none" | "read" | "write" | "admin" ("node" is not a name a user can give).
bool ParseRole(std::string_view name, Role* role);

inline constexpr std::string_view kRoleHeader = "X-Distkv-Role";

struct AuthConfig {
  // Off unless [auth] names a cluster secret: then every request but /health
  // needs a credential.
  bool enabled = false;
  std::string cluster_secret;
  std::vector<std::pair<std::string, Role>> tokens;  // token -> role
  Role status_role = Role::kRead;                    // /stats, /metrics, /cluster
};

// Equality of two byte strings in time that depends only on their lengths,
// never on their bytes.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// The role a request needs: endpoint and, for keys, the operation.
Role RequiredRole(const ParsedRequest& request, Role status_role);

class Authenticator {
 public:
  Authenticator() = default;
  explicit Authenticator(AuthConfig config);

  bool enabled() const { return config_.enabled; }
  const AuthConfig& config() const { return config_; }

  struct Identity {
    bool presented = false;  // an Authorization header was sent
    bool valid = false;      // and it named a configured token or the secret
    Role role = Role::kNone;
  };
  // Who sent the request. With auth off everyone is a node (allowed all).
  Identity Identify(const net::HttpRequest& request) const;

  // True if identity may do what needs `required`; else *error is the 401 or
  // 403 to answer with.
  bool Allow(const Identity& identity, Role required, net::HttpResponse* error) const;

  // The headers a node adds to a request it sends to another node, on behalf
  // of a client with `role` (kNode: on its own behalf). Nothing with auth off.
  void AddPeerCredentials(std::vector<net::Header>* headers, Role role = Role::kNode) const;

 private:
  AuthConfig config_;
  std::string secret_header_;  // "Bearer <secret>", built once
};

}  // namespace distkv
