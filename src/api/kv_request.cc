#include "src/api/kv_request.h"

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
    if (*m != "*") {
      *error = net::MakeErrorResponse(400, "bad_if_none_match",
                                      "only If-None-Match: * (create only) is supported");
      return false;
    }
    kv->if_none_match_star = true;
  }
  for (const auto& [name, value] : params) {
    if (name == "read" && value == "replica") kv->read_replica = true;
    if (name == "ack" && value == "replica") kv->ack_replica = true;
  }
  return true;
}

const std::string* Param(const std::vector<std::pair<std::string, std::string>>& params,
                         std::string_view name) {
  for (const auto& p : params) {
    if (p.first == name) return &p.second;
  }
  return nullptr;
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

std::string MakeEtag(uint64_t lsn) { return "\"" + std::to_string(lsn) + "\""; }

bool ParseRequest(net::HttpRequest& r, const KeyLimits& limits, ParsedRequest* out,
                  net::HttpResponse* error) {
  std::vector<std::pair<std::string, std::string>> params;
  if (!net::ParseQuery(r.query, &params)) {
    *error = net::MakeErrorResponse(400, "bad_query", "the query string has a malformed %-escape");
    return false;
  }
  const std::string& path = r.path;
  const bool read = IsMethod(r, "GET") || IsMethod(r, "HEAD");
  KvRequest& kv = out->kv;

  if (path.rfind("/kv/", 0) == 0) {
    out->endpoint = Endpoint::kKv;
    if (!net::PercentDecode(std::string_view(path).substr(4), &kv.key, false)) {
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
    const std::string* key = Param(params, "key");
    if (!key) {
      *error = net::MakeErrorResponse(400, "missing_key", path + " needs ?key=...");
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
        *error = net::MakeErrorResponse(400, "missing_value",
                                        path + " needs ?value=... (or the value as the body)");
        return false;
      }
    }
  } else {
    struct Fixed {
      const char* path;
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
    *error = net::MakeErrorResponse(
        404, "no_such_endpoint",
        "no endpoint " + path + "; try /kv/{key}, /get?key=, /set?key=&value=, /health, /stats");
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
