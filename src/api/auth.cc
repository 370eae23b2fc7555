#include "src/api/auth.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace distkv {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNone:
      return "none";
    case Role::kRead:
      return "read";
    case Role::kWrite:
      return "write";
    case Role::kAdmin:
      return "admin";
    case Role::kNode:
      return "node";
  }
  return "none";
}

bool ParseRole(std::string_view name, Role* role) {
  for (Role r : {Role::kNone, Role::kRead, Role::kWrite, Role::kAdmin}) {
    if (name == RoleName(r)) {
      *role = r;
      return true;
    }
  }
  return false;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The bytes are XORed and ORed together without a branch on them, eight at
  // a time, and the lengths are folded into the result rather than returned
  // early on: the time taken depends on the two lengths (a token's length is
  // not what keeps it secret) and never on the bytes. Every configured token
  // is compared on every request, so this is on the request path.
  uint64_t diff = a.size() ^ b.size();
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    diff |= x ^ y;
  }
  for (; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  // Keep the compiler from turning the loop back into an early exit.
  volatile uint64_t result = diff;
  return result == 0;
}

Role RequiredRole(const ParsedRequest& request, Role status_role) {
  switch (request.endpoint) {
    case Endpoint::kHealth:
    case Endpoint::kUi:  // the page holds no data; it asks for a token itself
      return Role::kNone;
    case Endpoint::kKv:
      return request.kv.op == KvOp::kGet ? Role::kRead : Role::kWrite;
    case Endpoint::kScan:
    case Endpoint::kMget:
      return Role::kRead;
    case Endpoint::kMput:
      return Role::kWrite;
    case Endpoint::kStats:
    case Endpoint::kMetrics:
    case Endpoint::kCluster:
    case Endpoint::kClusterStatus:
      return status_role;
    case Endpoint::kCompact:
    case Endpoint::kDigest:
    case Endpoint::kPromote:
    case Endpoint::kPurge:
    case Endpoint::kMigrate:
      return Role::kAdmin;
    case Endpoint::kReplicate:
    case Endpoint::kReplicaAck:
    case Endpoint::kClusterMap:
    case Endpoint::kSlots:
    case Endpoint::kShardScan:  // the node asking has checked its client's role
      return Role::kNode;
  }
  return Role::kNode;
}

Authenticator::Authenticator(AuthConfig config)
    : config_(std::move(config)), secret_header_("Bearer " + config_.cluster_secret) {}

Authenticator::Identity Authenticator::Identify(const net::HttpRequest& request) const {
  Identity id;
  if (!config_.enabled) {
    id.valid = true;
    id.role = Role::kNode;
    return id;
  }
  const std::string* header = request.header("Authorization");
  if (header == nullptr) return id;
  id.presented = true;
  std::string_view v = *header;
  constexpr std::string_view kScheme = "Bearer ";
  if (v.size() <= kScheme.size() || !net::EqualsIgnoreCase(v.substr(0, kScheme.size()), kScheme)) {
    return id;
  }
  v.remove_prefix(kScheme.size());
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);

  // Compare with every secret in full, remembering the match without
  // branching out of the loop, so the time taken does not say which matched.
  const bool is_node = ConstantTimeEquals(v, config_.cluster_secret);
  Role token_role = Role::kNone;
  bool token_match = false;
  for (const auto& [token, role] : config_.tokens) {
    const bool match = ConstantTimeEquals(v, token);
    token_match |= match;
    if (match) token_role = role;
  }
  if (is_node) {
    id.valid = true;
    id.role = Role::kNode;
    // A node acting for a client grants no more than the client's role.
    if (const std::string* on_behalf = request.header(kRoleHeader)) {
      Role r = Role::kNone;
      id.role = ParseRole(*on_behalf, &r) ? r : Role::kNone;
    }
  } else if (token_match) {
    id.valid = true;
    id.role = token_role;
  }
  return id;
}

bool Authenticator::Allow(const Identity& identity, Role required, net::HttpResponse* error) const {
  if (required == Role::kNone || (identity.valid && identity.role >= required)) return true;
  if (!identity.valid) {
    // RFC 6750 §3: no credential gets the bare challenge, a bad one says so.
    *error = net::MakeErrorResponse(
        401, "unauthorized",
        identity.presented
            ? "the bearer token is not valid for this cluster"
            : "this request needs a token: send Authorization: Bearer <token> (see [auth] in "
              "sharding.toml)");
    error->SetHeader("WWW-Authenticate", identity.presented
                                             ? "Bearer realm=\"distkv\", error=\"invalid_token\""
                                             : "Bearer realm=\"distkv\"");
    return false;
  }
  if (required == Role::kNode) {
    *error = net::MakeErrorResponse(
        403, "forbidden", "this endpoint is for the cluster's nodes (it needs the cluster secret)");
  } else {
    *error =
        net::MakeErrorResponse(403, "forbidden",
                               "this request needs the " + std::string(RoleName(required)) +
                                   " role; the token has " + std::string(RoleName(identity.role)));
  }
  return false;
}

void Authenticator::AddPeerCredentials(std::vector<net::Header>* headers, Role role) const {
  if (!config_.enabled) return;
  headers->push_back({"Authorization", secret_header_});
  if (role != Role::kNode)
    headers->push_back({std::string(kRoleHeader), std::string(RoleName(role))});
}

}  // namespace distkv
