// GET /cluster/status: every node's state, gathered by the node asked.
//
// For each node of the map (every shard's primary and replicas) it fetches
// /stats over the node's pooled outbound client with a short timeout, in
// parallel, and answers once every fetch has come back or failed. A dead
// node fails fast (connection refused); a hung one fails at the timeout. So
// the answer never takes much longer than kStatusTimeoutMs, and a node that
// does not answer is listed with "up": false and why, never waited for.
// Its own /stats it takes directly. The cluster page (/ui) polls this.
//
//   {"time_ms":..,"self":"host:port","timeout_ms":1000,"elapsed_ms":..,"slots":16384,
//    "shards":[{"name":..,"idx":..,"slots":[[first,last],..],
//               "nodes":[{"address":..,"configured_role":"primary"|"replica","up":true,
//                         "elapsed_ms":..,"error":"..","stats":{ the node's /stats }},..]}],
//    "migrations":[{"id":..,"slots":[first,last],"source":..,"target":..,"state":..},..]}
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "src/node/node.h"
#include "src/node/ui_page.h"

namespace distkv {
namespace {

// A /stats answer is spliced in as it came once a strict parser has checked
// that it is one JSON object (the peer is a node of this cluster; this
// guards against a truncated or foreign answer). Returns it without the
// trailing newline, or nothing.
std::optional<std::string> StatsObject(std::string body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body;
}

}  // namespace

void Node::HandleClusterStatus(net::Responder responder, uint64_t start_ns) {
  struct Fetch {
    std::string address;
    bool primary = false;
    size_t shard = 0;
    bool done = false;
    bool up = false;
    std::string error;  // why it is down
    std::string stats;  // the /stats body when up
    uint64_t elapsed_ms = 0;
  };
  struct Gather {
    std::vector<Fetch> fetches;
    size_t pending = 0;
  };
  auto g = std::make_shared<Gather>();
  for (size_t n = 0; n < map_.shards().size(); ++n) {
    const ShardConfig& s = map_.shards()[n];
    auto add = [&](const std::string& address, bool primary) {
      Fetch f;
      f.address = address;
      f.primary = primary;
      f.shard = n;
      g->fetches.push_back(std::move(f));
    };
    add(s.address, true);
    for (const auto& r : s.replicas) add(r, false);
  }

  auto render = [this, g, responder, start_ns]() mutable {
    std::string b;
    JsonWriter w(&b);
    w.BeginObject();
    w.Field("time_ms", events_.now_ms());
    w.Field("self", advertise_);
    w.Field("timeout_ms", kStatusTimeoutMs);
    w.Field("elapsed_ms", (uv_hrtime() - start_ns) / 1'000'000);
    w.Field("slots", kSlotCount);
    w.Key("shards");
    w.BeginArray();
    for (size_t n = 0; n < map_.shards().size(); ++n) {
      w.BeginObject();
      WriteShardHead(&w, map_.shards()[n]);
      w.Key("nodes");
      w.BeginArray();
      for (const Fetch& f : g->fetches) {
        if (f.shard != n) continue;
        w.BeginObject();
        w.Field("address", f.address);
        w.Field("configured_role", f.primary ? "primary" : "replica");
        w.Field("up", f.up);
        w.Field("elapsed_ms", f.elapsed_ms);
        if (f.up) {
          w.Key("stats");
          w.Raw(f.stats);
        } else if (!f.error.empty()) {
          w.Field("error", f.error);
        }
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    WriteMigrationsJson(&w);
    w.EndObject();
    net::HttpResponse r = net::MakeJsonResponse(std::move(b));
    r.SetHeader("Cache-Control", "no-store");
    Finish(responder, Route::kClusterStatus, start_ns, std::move(r));
  };

  for (Fetch& f : g->fetches) {
    if (f.address == advertise_) {
      f.done = f.up = true;
      f.stats = *StatsObject(StatsResponse().body);
    } else {
      g->pending++;
    }
  }
  if (g->pending == 0) {
    render();
    return;
  }
  auto shared_render = std::make_shared<decltype(render)>(std::move(render));
  for (size_t i = 0; i < g->fetches.size(); ++i) {
    if (g->fetches[i].done) continue;
    net::OutboundRequest req;
    req.target = "/stats";
    req.timeout_ms = kStatusTimeoutMs;
    // Asked with the status role the caller was checked for, no more.
    auth_.AddPeerCredentials(&req.headers, auth_.config().status_role);
    const uint64_t sent_ns = uv_hrtime();
    client_->Request(g->fetches[i].address, std::move(req),
                     [g, i, sent_ns, shared_render](net::ClientResult& result) {
                       Fetch& f = g->fetches[i];
                       f.done = true;
                       f.elapsed_ms = (uv_hrtime() - sent_ns) / 1'000'000;
                       if (result.error != net::ClientError::kNone) {
                         f.error = std::string(net::ClientErrorName(result.error));
                         if (!result.detail.empty()) f.error += ": " + result.detail;
                       } else if (result.response.status != 200) {
                         f.error = "/stats answered " + std::to_string(result.response.status);
                       } else if (auto stats = StatsObject(std::move(result.response.body))) {
                         f.up = true;
                         f.stats = std::move(*stats);
                       } else {
                         f.error = "/stats did not answer a JSON object";
                       }
                       if (--g->pending == 0) (*shared_render)();
                     });
  }
}

net::HttpResponse Node::UiResponse() const {
  net::HttpResponse r;
  r.SetHeader("Content-Type", "text/html; charset=utf-8");
  r.SetHeader("Cache-Control", "no-cache");
  // Everything is inline and data comes only from this node.
  r.SetHeader("Content-Security-Policy",
              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'");
  r.SetHeader("X-Content-Type-Options", "nosniff");
  r.body = std::string(UiPage());
  return r;
}

}  // namespace distkv
