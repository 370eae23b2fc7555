// The operator commands' client; see admin_caller.h.
#include "src/node/admin_caller.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "net/tls_context.h"
#include "src/obs/progress_bar.h"

namespace distkv {

AdminCaller::AdminCaller(const ClusterConfig& config, std::string token)
    : token_(std::move(token)) {
  uv_loop_init(&loop_);
  net::ClientOptions co;
  co.request_timeout_ms = 10'000;
  co.connect_timeout_ms = config.connect_timeout_ms;
  if (config.tls) {
    // The nodes speak HTTPS only: verify them against the config's CA, and
    // present the node certificate where mutual TLS asks for one.
    std::string error;
    co.tls = net::TlsContext::NewClient(config.tls_files, &error);
    if (!co.tls) std::fprintf(stderr, "distkv: [tls]: %s\n", error.c_str());
  }
  client_ = std::make_unique<net::HttpClient>(&loop_, co);
}

AdminCaller::~AdminCaller() {
  client_->Close();
  uv_run(&loop_, UV_RUN_DEFAULT);
  client_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

net::ClientResult AdminCaller::Call(const std::string& address, const std::string& method,
                                    const std::string& target, std::string body) {
  net::OutboundRequest req;
  req.method = method;
  req.target = target;
  req.body = std::move(body);
  if (!token_.empty()) req.headers.push_back({"Authorization", "Bearer " + token_});
  net::ClientResult out;
  bool done = false;
  client_->Request(address, std::move(req), [&](net::ClientResult& result) {
    out = std::move(result);
    done = true;
  });
  while (!done) uv_run(&loop_, UV_RUN_ONCE);
  return out;
}

void AdminCaller::RunUntil(const bool& done) {
  while (!done) uv_run(&loop_, UV_RUN_ONCE);
}

std::string AdminToken(const ClusterConfig& config, const std::string& given) {
  return config.auth.cluster_secret.empty() ? given : config.auth.cluster_secret;
}

bool FetchClusterStatus(AdminCaller* caller, const ClusterConfig& config, nlohmann::json* status,
                        std::string* error) {
  std::vector<std::string> nodes;
  for (const ShardConfig& s : config.shards) nodes.push_back(s.address);
  for (const ShardConfig& s : config.shards) {
    nodes.insert(nodes.end(), s.replicas.begin(), s.replicas.end());
  }
  *error = "the config names no node";
  for (const std::string& node : nodes) {
    net::ClientResult r = caller->Call(node, "GET", "/cluster/status");
    if (r.error != net::ClientError::kNone) {
      *error = node + ": " + r.detail;
      continue;
    }
    if (r.response.status != 200) {
      *error = node + " answered " + std::to_string(r.response.status) + ": " + r.response.body;
      continue;
    }
    *status = nlohmann::json::parse(r.response.body, nullptr, /*allow_exceptions=*/false);
    if (status->is_object() && status->contains("shards")) return true;
    *error = node + ": /cluster/status is not the expected JSON";
  }
  return false;
}

uint64_t FieldUnsigned(const nlohmann::json& j, const char* name) {
  const auto it = j.find(name);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

std::string FieldString(const nlohmann::json& j, const char* name) {
  const auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

double ProgressShare(const nlohmann::json& entry) {
  const uint64_t total = FieldUnsigned(entry, "total");
  if (total == 0) return -1;
  return std::min(1.0,
                  static_cast<double>(FieldUnsigned(entry, "done")) / static_cast<double>(total));
}

std::string ProgressText(const nlohmann::json& entry) {
  const uint64_t done = FieldUnsigned(entry, "done"), total = FieldUnsigned(entry, "total");
  const std::string unit = FieldString(entry, "unit");
  auto amount = [&](uint64_t n) {
    return unit == "bytes" ? HumanBytes(n) : std::to_string(n) + (unit.empty() ? "" : " " + unit);
  };
  std::string out = amount(done);
  if (total > 0) {
    out += " of " + amount(total) + " (" +
           std::to_string(static_cast<int>(ProgressShare(entry) * 100)) + "%)";
  }
  const std::string detail = FieldString(entry, "detail");
  if (!detail.empty()) out += ", " + detail;
  return out;
}

}  // namespace distkv
