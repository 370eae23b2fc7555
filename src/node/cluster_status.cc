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

#include "src/node/node.h"
#include "src/node/ui_page.h"

namespace distkv {
namespace {

// A /stats answer is spliced in as it came: check that it is one JSON object
// (the peer is a node of this cluster; this guards against a truncated or
// foreign answer, not a hostile one).
bool LooksLikeJsonObject(std::string_view body) {
  while (!body.empty() && (body.back() == '\n' || body.back() == ' ' || body.back() == '\r'))
    body.remove_suffix(1);
  return body.size() >= 2 && body.front() == '{' && body.back() == '}';
}

std::string_view TrimNewline(std::string_view s) {
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
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
    std::string b = "{";
    AppendJsonField(&b, "time_ms", events_.now_ms());
    AppendJsonField(&b, "self", advertise_);
    AppendJsonField(&b, "timeout_ms", kStatusTimeoutMs);
    AppendJsonField(&b, "elapsed_ms", (uv_hrtime() - start_ns) / 1'000'000);
    AppendJsonField(&b, "slots", kSlotCount);
    b += "\"shards\":[";
    for (size_t n = 0; n < map_.shards().size(); ++n) {
      const ShardConfig& s = map_.shards()[n];
      if (n) b += ",";
      AppendShardHead(&b, s);
      b += ",\"nodes\":[";
      bool first = true;
      for (const Fetch& f : g->fetches) {
        if (f.shard != n) continue;
        b += first ? "{" : ",{";
        first = false;
        AppendJsonField(&b, "address", f.address);
        AppendJsonField(&b, "configured_role", f.primary ? "primary" : "replica");
        b += std::string("\"up\":") + (f.up ? "true," : "false,");
        AppendJsonField(&b, "elapsed_ms", f.elapsed_ms, f.up || !f.error.empty());
        if (f.up) {
          b += "\"stats\":";
          b += TrimNewline(f.stats);
        } else if (!f.error.empty()) {
          AppendJsonField(&b, "error", f.error, false);
        }
        b += "}";
      }
      b += "]}";
    }
    b += "],";
    AppendMigrationsJson(&b);
    b += "}\n";
    net::HttpResponse r;
    r.SetHeader("Content-Type", "application/json");
    r.SetHeader("Cache-Control", "no-store");
    r.body = std::move(b);
    Finish(responder, Route::kClusterStatus, start_ns, std::move(r));
  };

  for (Fetch& f : g->fetches) {
    if (f.address == advertise_) {
      f.done = f.up = true;
      f.stats = StatsResponse().body;
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
                       } else if (!LooksLikeJsonObject(result.response.body)) {
                         f.error = "/stats did not answer a JSON object";
                       } else {
                         f.up = true;
                         f.stats = std::move(result.response.body);
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
