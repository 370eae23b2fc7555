#include "src/api/kv_request.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <vector>

namespace distkv {
namespace {

bool IsMethod(const net::HttpRequest& r, std::string_view m) { return r.method == m; }

net::HttpResponse MethodNotAllowed(const net::HttpRequest& r, std::string_view allow) {
  net::HttpResponse resp = net::MakeErrorResponse(
      405, "method_not_allowed",
      r.method + " is not allowed on " + r.path + "; use " + std::string(allow));
  resp.SetHeader("Allow", allow);
  return resp;
}

// A comma-separated list of entity tags as this server makes them ("42";
// weak ones, W/"42", compare equal for If-None-Match, RFC 9110 13.1.2).
bool ParseEtagList(std::string_view list, std::vector<uint64_t>* out) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view tag = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.rfind("W/", 0) == 0) tag.remove_prefix(2);
    if (tag.size() < 3 || tag.front() != '"' || tag.back() != '"') return false;
    const std::optional<uint64_t> lsn = ParseEtagNumber(tag);
    if (!lsn) return false;
    out->push_back(*lsn);
  }
  return !out->empty();
}

// Reads conditions and flags shared by every key-value request.
bool ParseConditions(const net::HttpRequest& r,
                     const std::vector<std::pair<std::string, std::string>>& params, KvRequest* kv,
                     net::HttpResponse* error) {
  if (const std::string* m = r.header("If-Match")) {
    std::string_view v = *m;
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    bool digits = !v.empty();
    for (char c : v) digits = digits && c >= '0' && c <= '9';
    if (v == "*") {
      digits = true;
    }
    if (!digits) {
      *error = net::MakeErrorResponse(
          400, "bad_if_match", "If-Match must be an ETag this server gave, like \"42\", or *");
      return false;
    }
    kv->has_if_match = true;
    kv->if_match = std::string(v);
  }
  if (const std::string* m = r.header("If-None-Match")) {
    if (*m == "*") {
      kv->if_none_match_star = true;
    } else if (kv->op != KvOp::kGet || !ParseEtagList(*m, &kv->if_none_match)) {
      *error = net::MakeErrorResponse(
          400, "bad_if_none_match",
          kv->op == KvOp::kGet
              ? "If-None-Match must be * or ETags this server gave, like \"42\", \"43\""
              : "a write takes only If-None-Match: * (create only)");
      return false;
    }
  }
  for (const auto& [name, value] : params) {
    if (name == "read" && value == "replica") kv->read_replica = true;
    if (name == "ack" && value == "replica") kv->ack_replica = true;
  }
  // The TTL, from ?ttl= or X-Distkv-TTL (the same if both): whole seconds.
  const std::string* ttl = nullptr;
  for (const auto& [name, value] : params) {
    if (name == "ttl") ttl = &value;
  }
  if (const std::string* h = r.header("X-Distkv-TTL")) {
    if (ttl && *ttl != *h) {
      *error = net::MakeErrorResponse(400, "bad_ttl",
                                      "?ttl= and X-Distkv-TTL disagree; give the TTL once");
      return false;
    }
    ttl = h;
  }
  if (ttl) {
    uint64_t v = 0;
    bool ok = !ttl->empty() && ttl->size() <= 12;
    for (char c : *ttl) {
      ok = ok && c >= '0' && c <= '9';
      if (ok) v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!ok || v > kMaxTtlSeconds) {
      *error = net::MakeErrorResponse(
          400, "bad_ttl",
          "the TTL must be whole seconds from 0 (no expiry) to " + std::to_string(kMaxTtlSeconds));
      return false;
    }
    if (kv->op != KvOp::kPut) {
      *error = net::MakeErrorResponse(400, "bad_ttl", "only a PUT takes a TTL");
      return false;
    }
    kv->ttl_s = v;
  }
  return true;
}

using Params = std::vector<std::pair<std::string, std::string>>;

// The query parameters a key-value endpoint takes, each at most once, with
// the values it understands. Anything else is refused: a typo such as
// ?ack=replcia must not silently change what a write waits for, and a second
// key= must not silently pick one of two keys.
bool CheckGivenParams(const Params& params, std::initializer_list<std::string_view> allowed,
                      std::string_view path, net::HttpResponse* error) {
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].first;
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string takes;
      for (std::string_view a : allowed) takes += (takes.empty() ? "" : ", ") + std::string(a);
      if (takes.empty()) takes = "none";
      *error = net::MakeErrorResponse(400, "unknown_parameter",
                                      "unknown query parameter \"" + name + "\" for " +
                                          std::string(path) + "; it takes " + takes);
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (params[j].first == name) {
        *error = net::MakeErrorResponse(400, "duplicate_parameter",
                                        "the query parameter \"" + name + "\" is given twice");
        return false;
      }
    }
    if ((name == "read" || name == "ack") && params[i].second != "replica") {
      *error =
          net::MakeErrorResponse(400, "bad_parameter",
                                 name + "=" + params[i].second +
                                     " is not understood; the only value is " + name + "=replica");
      return false;
    }
  }
  return true;
}

// Nearly every request has no query: it needs no look at what is allowed.
bool CheckParams(const Params& params, std::initializer_list<std::string_view> allowed,
                 std::string_view path, net::HttpResponse* error) {
  return params.empty() || CheckGivenParams(params, allowed, path, error);
}

const std::string* Param(const std::vector<std::pair<std::string, std::string>>& params,
                         std::string_view name) {
  for (const auto& p : params) {
    if (p.first == name) return &p.second;
  }
  return nullptr;
}

// A batch takes no query parameter. What a single PUT would take (a TTL, an
// acknowledgement from a replica) is refused as not implemented rather than
// dropped: the writes would be stored without it.
bool CheckBatchParams(const net::HttpRequest& r, const Params& params, std::string_view path,
                      net::HttpResponse* error) {
  const bool ttl = Param(params, "ttl") != nullptr || r.header("X-Distkv-TTL") != nullptr;
  if (ttl || Param(params, "ack") != nullptr) {
    *error = net::MakeErrorResponse(
        501, "not_implemented",
        std::string(path) +
            (ttl ? " takes no TTL; write keys that expire with single PUTs"
                 : " takes no ?ack=replica; [replication] min_acks applies to its writes"));
    return false;
  }
  return CheckParams(params, {}, path, error);
}

bool CheckKey(const std::string& key, const KeyLimits& limits, net::HttpResponse* error) {
  if (key.empty()) {
    *error = net::MakeErrorResponse(400, "empty_key", "the key must be at least 1 byte");
    return false;
  }
  if (key.size() > limits.max_key_bytes) {
    *error =
        net::MakeErrorResponse(400, "key_too_long",
                               "the key has " + std::to_string(key.size()) +
                                   " bytes; the limit is " + std::to_string(limits.max_key_bytes));
    return false;
  }
  return true;
}

}  // namespace

std::string MakeEtag(uint64_t lsn) {
  char text[kMaxEtagBytes];
  return std::string(text, WriteEtag(lsn, text));
}

void AppendEtagLine(uint64_t lsn, std::string* lines) {
  char text[kMaxEtagLineBytes];
  std::memcpy(text, kEtagLinePrefix.data(), kEtagLinePrefix.size());
  char* end = WriteEtag(lsn, text + kEtagLinePrefix.size());
  *end++ = '\r';
  *end++ = '\n';
  lines->append(text, end);
}

bool ParseRequest(net::HttpRequest& r, const KeyLimits& limits, ParsedRequest* out,
                  net::HttpResponse* error) {
  Params params;
  // Most requests have no query, and then need not call ParseQuery.
  if (!r.query.empty() && !net::ParseQuery(r.query, &params)) {
    *error = net::MakeErrorResponse(400, "bad_query", "the query string has a malformed %-escape");
    return false;
  }
  // A view: its comparisons below look at the length first.
  const std::string_view path = r.path;
  const bool read = IsMethod(r, "GET") || IsMethod(r, "HEAD");
  KvRequest& kv = out->kv;

  if (path == "/kv" || path == "/internal/scan") {
    if (!read) {
      *error = MethodNotAllowed(r, "GET, HEAD");
      return false;
    }
    const bool shard = path == "/internal/scan";
    out->endpoint = shard ? Endpoint::kShardScan : Endpoint::kScan;
    if (shard) {
      return CheckParams(params, {"shard", "hash", "limit", "prefix", "values"}, path, error) &&
             ParseShardScanRequest(params, &out->scan, error);
    }
    return CheckParams(params, {"prefix", "cursor", "limit", "values"}, path, error) &&
           ParseScanRequest(params, &out->scan, error);
  }
  // POST to these two names is a batch; GET and PUT still address the keys
  // "_mget" and "_mput".
  if ((path == "/kv/_mget" || path == "/kv/_mput") && IsMethod(r, "POST")) {
    out->endpoint = path == "/kv/_mget" ? Endpoint::kMget : Endpoint::kMput;
    return CheckBatchParams(r, params, path, error);
  }
  if (path.starts_with("/kv/")) {
    out->endpoint = Endpoint::kKv;
    if (!CheckParams(params, {"read", "ack", "ttl"}, "/kv/{key}", error)) return false;
    if (!net::PercentDecode(path.substr(4), &kv.key, false)) {
      *error = net::MakeErrorResponse(400, "bad_key", "the key has a malformed %-escape");
      return false;
    }
    if (read) {
      kv.op = KvOp::kGet;
    } else if (IsMethod(r, "PUT") || IsMethod(r, "POST")) {
      kv.op = KvOp::kPut;
      kv.value = std::move(r.body);
    } else if (IsMethod(r, "DELETE")) {
      kv.op = KvOp::kDelete;
    } else {
      *error = MethodNotAllowed(r, "GET, HEAD, PUT, POST, DELETE");
      return false;
    }
  } else if (path == "/get" || path == "/retrieve" || path == "/set" || path == "/store" ||
             path == "/delete") {
    out->endpoint = Endpoint::kKv;
    const bool ok =
        path == "/get" || path == "/retrieve" ? CheckParams(params, {"key", "read"}, path, error)
        : path == "/delete"                   ? CheckParams(params, {"key", "ack"}, path, error)
                            : CheckParams(params, {"key", "value", "ack", "ttl"}, path, error);
    if (!ok) return false;
    const std::string* key = Param(params, "key");
    if (!key) {
      *error = net::MakeErrorResponse(400, "missing_key", std::string(path) + " needs ?key=...");
      return false;
    }
    kv.key = *key;
    if (path == "/get" || path == "/retrieve") {
      if (!read) {
        *error = MethodNotAllowed(r, "GET, HEAD");
        return false;
      }
      kv.op = KvOp::kGet;
    } else if (path == "/delete") {
      if (!(IsMethod(r, "GET") || IsMethod(r, "POST") || IsMethod(r, "DELETE"))) {
        *error = MethodNotAllowed(r, "GET, POST, DELETE");
        return false;
      }
      kv.op = KvOp::kDelete;
    } else {
      if (!(IsMethod(r, "GET") || IsMethod(r, "POST") || IsMethod(r, "PUT"))) {
        *error = MethodNotAllowed(r, "GET, POST, PUT");
        return false;
      }
      kv.op = KvOp::kPut;
      if (const std::string* value = Param(params, "value")) {
        kv.value = *value;
      } else if (!r.body.empty()) {
        kv.value = std::move(r.body);
      } else {
        *error = net::MakeErrorResponse(
            400, "missing_value",
            std::string(path) + " needs ?value=... (or the value as the body)");
        return false;
      }
    }
  } else {
    struct Fixed {
      std::string_view path;
      Endpoint endpoint;
      const char* allow;
    };
    static constexpr Fixed kFixed[] = {
        {"/health", Endpoint::kHealth, "GET, HEAD"},
        {"/stats", Endpoint::kStats, "GET, HEAD"},
        {"/metrics", Endpoint::kMetrics, "GET, HEAD"},
        {"/cluster", Endpoint::kCluster, "GET, HEAD"},
        {"/cluster/status", Endpoint::kClusterStatus, "GET, HEAD"},
        {"/ui", Endpoint::kUi, "GET, HEAD"},
        {"/internal/digest", Endpoint::kDigest, "GET, HEAD"},
        {"/internal/replicate", Endpoint::kReplicate, "GET"},
        {"/internal/replica-ack", Endpoint::kReplicaAck, "POST"},
        {"/admin/compact", Endpoint::kCompact, "POST"},
        {"/internal/cluster-map", Endpoint::kClusterMap, "GET, POST"},
        {"/admin/promote", Endpoint::kPromote, "POST"},
        {"/purge", Endpoint::kPurge, "GET, POST"},
        {"/admin/migrate", Endpoint::kMigrate, "GET, POST"},
        {"/internal/slots/snapshot", Endpoint::kSlots, "GET"},
        {"/internal/slots/tail", Endpoint::kSlots, "GET"},
        {"/internal/slots/pause", Endpoint::kSlots, "POST"},
        {"/internal/slots/cutover-check", Endpoint::kSlots, "POST"},
    };
    for (const Fixed& f : kFixed) {
      if (path != f.path) continue;
      std::string_view allow = f.allow;
      bool ok = allow.find(r.method) != std::string_view::npos && !r.method.empty();
      if (!ok) {
        *error = MethodNotAllowed(r, allow);
        return false;
      }
      out->endpoint = f.endpoint;
      for (const auto& [name, value] : params) {
        if (name == "read" && value == "replica") kv.read_replica = true;
      }
      return true;
    }
    *error =
        net::MakeErrorResponse(404, "no_such_endpoint",
                               "no endpoint " + std::string(path) +
                                   "; try /kv/{key}, /get?key=, /set?key=&value=, /health, /stats");
    return false;
  }

  if (!CheckKey(kv.key, limits, error)) return false;
  if (kv.op == KvOp::kPut && kv.value.size() > limits.max_value_bytes) {
    *error = net::MakeErrorResponse(413, "value_too_large",
                                    "the value has " + std::to_string(kv.value.size()) +
                                        " bytes; the limit is " +
                                        std::to_string(limits.max_value_bytes));
    return false;
  }
  return ParseConditions(r, params, &kv, error);
}

}  // namespace distkv
