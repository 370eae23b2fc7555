// Client: see client.h for routing, retries and map refreshes.
#include "src/client/client.h"

#include <deque>

#include "net/http_client.h"
#include "src/client/answers.h"
#include "src/obs/json_bytes.h"
#include "src/obs/json_writer.h"
#include "src/obs/utf8.h"

namespace distkv::client {

namespace {

// A request as the client retries it.
struct Call {
  std::string method = "GET";
  std::string target;
  std::string body;
  std::vector<net::Header> headers;
  std::string key;         // routes the call to the key's shard ("" = any node)
  std::string node;        // send here (a redirect's target, or an explicit node)
  bool idempotent = true;  // may be repeated after an unclear failure
  bool replica = false;    // may be served by a replica of the key's shard
  int attempts = 0;
  std::vector<std::string> tried;  // nodes that failed this call
  std::function<void(Response&)> done;
};

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v) {
    if (x == s) return true;
  }
  return false;
}

// "http://host:port/path" -> "host:port"
std::string LocationNode(const std::string& location) {
  std::string_view v = location;
  if (v.starts_with("http://")) v.remove_prefix(7);
  if (v.starts_with("https://")) v.remove_prefix(8);
  return std::string(v.substr(0, v.find('/')));
}

Response FromHttp(const std::string& node, net::HttpResponse& http) {
  Response r;
  r.status = http.status;
  r.node = node;
  if (const std::string* e = http.header("ETag")) r.etag = ParseEtag(*e);
  if (const std::string* e = http.header("X-Distkv-Expires")) r.expires_ms = std::atoll(e->c_str());
  if (const std::string* t = http.header("X-Distkv-TTL")) r.ttl_seconds = std::atoll(t->c_str());
  if (const std::string* s = http.header("X-Distkv-Shard")) r.shard = *s;
  if (!r.ok()) {
    ParseErrorBody(http.body, &r.error, &r.message);
    if (r.error.empty()) r.error = "http_" + std::to_string(http.status);
  }
  r.body = std::move(http.body);
  return r;
}

}  // namespace

struct Client::Impl {
  uv_loop_t* loop;
  Options options;
  net::HttpClient http;
  SlotMap map;
  bool refreshing = false;
  bool stale = false;  // refresh at the next opportunity
  std::deque<std::function<void(bool, const std::string&)>> map_waiters;
  size_t next_any = 0;
  Counters counters;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  Impl(uv_loop_t* l, Options o)
      : loop(l), options(std::move(o)), http(l, ClientOptionsOf(options)) {}

  static net::ClientOptions ClientOptionsOf(const Options& o) {
    net::ClientOptions co;
    co.connect_timeout_ms = o.connect_timeout_ms;
    co.request_timeout_ms = o.request_timeout_ms;
    co.max_pipeline = 1;
    return co;
  }

  // --- the map -----------------------------------------------------------

  void Refresh(std::function<void(bool, const std::string&)> done) {
    if (done) map_waiters.push_back(std::move(done));
    if (refreshing) return;
    refreshing = true;
    stale = false;
    counters.map_refreshes++;
    auto nodes = std::make_shared<std::vector<std::string>>(options.seeds);
    for (const std::string& n : map.AllNodes()) {
      if (!Contains(*nodes, n)) nodes->push_back(n);
    }
    TryRefresh(std::move(nodes), 0, "no seed node given");
  }

  void TryRefresh(std::shared_ptr<std::vector<std::string>> nodes, size_t i, std::string error) {
    if (i >= nodes->size()) {
      FinishRefresh(false, "cannot read the cluster map from any node (" + error + ")");
      return;
    }
    net::OutboundRequest req;
    req.target = "/cluster";
    req.headers = options.headers;
    const std::string node = (*nodes)[i];
    http.Request(node, std::move(req),
                 [this, alive = alive, nodes, i, node](net::ClientResult& result) {
                   if (!*alive) return;
                   std::string why;
                   if (result.error != net::ClientError::kNone) {
                     why = node + ": " + std::string(net::ClientErrorName(result.error));
                   } else if (result.response.status != 200) {
                     why = node + ": HTTP " + std::to_string(result.response.status);
                   } else {
                     SlotMap fresh;
                     if (fresh.Parse(result.response.body, &why)) {
                       // Never go back to an older map than the one we hold.
                       if (map.empty() || fresh.epoch() >= map.epoch()) map = std::move(fresh);
                       FinishRefresh(true, "");
                       return;
                     }
                     why = node + ": " + why;
                   }
                   TryRefresh(nodes, i + 1, why);
                 });
  }

  void FinishRefresh(bool ok, const std::string& error) {
    refreshing = false;
    auto waiters = std::move(map_waiters);
    map_waiters.clear();
    for (auto& w : waiters) w(ok, error);
  }

  // --- sending -----------------------------------------------------------

  // The nodes that can answer call, best first.
  std::vector<std::string> Candidates(const Call& call) {
    std::vector<std::string> out;
    if (!call.node.empty()) out.push_back(call.node);
    if (!call.key.empty() && !map.empty()) {
      const ShardInfo& s = map.shards()[map.OwnerOfKey(call.key)];
      if (call.replica) out.insert(out.end(), s.replicas.begin(), s.replicas.end());
      out.push_back(s.primary);
      if (call.idempotent && !call.replica)
        out.insert(out.end(), s.replicas.begin(), s.replicas.end());
    }
    // Any node forwards to the owner: the last resort (and the route of
    // keyless calls), starting at a rotating position to spread them.
    std::vector<std::string> all = map.AllNodes();
    for (const std::string& seed : options.seeds) {
      if (!Contains(all, seed)) all.push_back(seed);
    }
    const size_t start = all.empty() ? 0 : next_any++ % all.size();
    for (size_t k = 0; k < all.size(); ++k) {
      const std::string& n = all[(start + k) % all.size()];
      if (!Contains(out, n)) out.push_back(n);
    }
    return out;
  }

  void Send(std::shared_ptr<Call> call) {
    if (map.empty() || stale) {
      const bool had_map = !map.empty();
      Refresh([this, call, had_map](bool ok, const std::string& error) {
        if (!ok && !had_map) {
          Response r;
          r.error = "no_cluster_map";
          r.message = error;
          call->done(r);
          return;
        }
        SendNow(call);
      });
      return;
    }
    SendNow(std::move(call));
  }

  void SendNow(std::shared_ptr<Call> call) {
    std::string node;
    for (const std::string& n : Candidates(*call)) {
      if (!Contains(call->tried, n)) {
        node = n;
        break;
      }
    }
    if (node.empty()) node = call->tried.empty() ? std::string() : call->tried.back();
    if (node.empty()) {
      Response r;
      r.error = "no_node";
      r.message = "no node to send the request to";
      call->done(r);
      return;
    }
    call->attempts++;
    counters.requests++;
    net::OutboundRequest req;
    req.method = call->method;
    req.target = call->target;
    req.body = call->body;
    req.headers = options.headers;
    req.headers.insert(req.headers.end(), call->headers.begin(), call->headers.end());
    http.Request(node, std::move(req),
                 [this, alive = alive, call, node](net::ClientResult& result) mutable {
                   if (!*alive) return;
                   OnResult(std::move(call), node, result);
                 });
  }

  bool Retry(const std::shared_ptr<Call>& call) {
    if (call->attempts >= options.max_attempts) return false;
    counters.retries++;
    Send(call);
    return true;
  }

  void OnResult(std::shared_ptr<Call> call, const std::string& node, net::ClientResult& result) {
    if (result.error != net::ClientError::kNone) {
      // Not sent at all (refused), or a read: safe to repeat elsewhere.
      const bool unsent = result.error == net::ClientError::kConnectFailed ||
                          result.error == net::ClientError::kConnectTimeout;
      if (call->idempotent || unsent) {
        call->tried.push_back(node);
        call->node.clear();
        stale = true;  // the node may have been replaced (failover)
        if (Retry(call)) return;
      }
      Response r;
      r.node = node;
      r.error = std::string(net::ClientErrorName(result.error));
      r.message =
          node + ": " + result.detail +
          (call->idempotent || unsent ? "" : " (the write may or may not have been applied)");
      call->done(r);
      return;
    }
    net::HttpResponse& http_resp = result.response;
    if (const std::string* e = http_resp.header("X-Distkv-Epoch")) {
      if (static_cast<uint64_t>(std::atoll(e->c_str())) > map.epoch()) stale = true;
    }
    const int status = http_resp.status;
    if (status == 307 || status == 308) {
      if (const std::string* loc = http_resp.header("Location")) {
        counters.redirects++;
        call->node = LocationNode(*loc);
        stale = true;
        if (call->attempts < options.max_attempts) {
          SendNow(call);  // to the named node, before the refresh
          return;
        }
      }
    } else if (status == 421) {
      stale = true;
      call->node.clear();
      if (Retry(call)) return;
    } else if ((status == 502 || status == 503 || status == 504) && call->idempotent) {
      // The node could not reach the owner: another node might.
      call->tried.push_back(node);
      call->node.clear();
      if (Retry(call)) return;
    }
    Response r = FromHttp(node, http_resp);
    call->done(r);
  }

  std::shared_ptr<Call> NewCall(std::string method, std::string target, std::string key,
                                std::function<void(Response&)> done) {
    auto c = std::make_shared<Call>();
    c->method = std::move(method);
    c->target = std::move(target);
    c->key = std::move(key);
    c->idempotent = c->method == "GET" || c->method == "HEAD";
    c->done = std::move(done);
    return c;
  }

  void Batch(const std::string& endpoint, std::vector<std::pair<std::string, std::string>> items,
             bool with_values, BatchCallback done);
};

Client::Client(uv_loop_t* loop, Options options)
    : impl_(std::make_unique<Impl>(loop, std::move(options))) {}

Client::~Client() {
  *impl_->alive = false;
  impl_->http.Close();
}

void Client::Close() {
  *impl_->alive = false;
  impl_->http.Close();
}

const SlotMap& Client::map() const { return impl_->map; }
const Client::Counters& Client::counters() const { return impl_->counters; }

void Client::RefreshMap(std::function<void(bool ok, const std::string& error)> done) {
  impl_->Refresh(std::move(done));
}

void Client::Get(const std::string& key, const ReadOptions& options, Callback done) {
  std::string target = "/kv/" + net::PercentEncode(key);
  if (options.replica) target += "?read=replica";
  auto call = impl_->NewCall("GET", std::move(target), key, std::move(done));
  call->replica = options.replica;
  impl_->Send(std::move(call));
}

namespace {
void AddConditions(const WriteOptions& options, std::vector<net::Header>* headers) {
  if (options.if_match)
    headers->push_back({"If-Match", "\"" + std::to_string(options.if_match) + "\""});
  if (options.if_none_match) headers->push_back({"If-None-Match", "*"});
}
}  // namespace

void Client::Put(const std::string& key, std::string value, const WriteOptions& options,
                 Callback done) {
  std::string target = "/kv/" + net::PercentEncode(key);
  if (options.ttl_seconds >= 0) target += "?ttl=" + std::to_string(options.ttl_seconds);
  auto call = impl_->NewCall("PUT", std::move(target), key, std::move(done));
  call->body = std::move(value);
  AddConditions(options, &call->headers);
  impl_->Send(std::move(call));
}

void Client::Delete(const std::string& key, const WriteOptions& options, Callback done) {
  auto call = impl_->NewCall("DELETE", "/kv/" + net::PercentEncode(key), key, std::move(done));
  AddConditions(options, &call->headers);
  impl_->Send(std::move(call));
}

void Client::Scan(const ScanRequest& request, ScanCallback done) {
  std::string target = "/kv?limit=" + std::to_string(request.limit);
  if (!request.cursor.empty()) target += "&cursor=" + net::PercentEncode(request.cursor);
  if (!request.prefix.empty()) target += "&prefix=" + net::PercentEncode(request.prefix);
  if (request.values) target += "&values=true";
  auto call = impl_->NewCall("GET", std::move(target), "", [done](Response& r) {
    ScanPage page;
    if (r.ok() && !ParseScanPage(r.body, &page)) {
      r.status = 0;
      r.error = "bad_answer";
      r.message = "the scan page is not the expected JSON";
    }
    done(r, page);
  });
  impl_->Send(std::move(call));
}

void Client::NodeGet(const std::string& node, const std::string& target, Callback done) {
  auto call = impl_->NewCall("GET", target, "", std::move(done));
  call->node = node;
  impl_->Send(std::move(call));
}

void Client::MGet(const std::vector<std::string>& keys, BatchCallback done) {
  std::vector<std::pair<std::string, std::string>> items;
  items.reserve(keys.size());
  for (const auto& k : keys) items.emplace_back(k, std::string());
  impl_->Batch("/kv/_mget", std::move(items), false, std::move(done));
}

void Client::MPut(const std::vector<std::pair<std::string, std::string>>& pairs,
                  BatchCallback done) {
  impl_->Batch("/kv/_mput", pairs, true, std::move(done));
}

// A batch is split by owner shard; each part is one POST to the shard's
// primary (reads: any node of it), sent in parallel; the answers are merged
// back into the order of the items.
void Client::Impl::Batch(const std::string& endpoint,
                         std::vector<std::pair<std::string, std::string>> items, bool with_values,
                         BatchCallback done) {
  struct State {
    std::vector<KeyResult> results;
    size_t pending = 0;
    Response summary;
    BatchCallback done;
  };
  auto state = std::make_shared<State>();
  state->results.resize(items.size());
  state->done = std::move(done);
  state->summary.status = 200;
  for (size_t i = 0; i < items.size(); ++i) state->results[i].key = items[i].first;
  if (items.empty()) {
    state->done(state->summary, state->results);
    return;
  }
  auto start = [this, state, endpoint, with_values, items = std::move(items)](
                   bool ok, const std::string& error) mutable {
    if (!ok) {
      state->summary.status = 0;
      state->summary.error = "no_cluster_map";
      state->summary.message = error;
      state->done(state->summary, state->results);
      return;
    }
    std::vector<std::vector<size_t>> parts(map.shards().size());
    for (size_t i = 0; i < items.size(); ++i) parts[map.OwnerOfKey(items[i].first)].push_back(i);
    for (const auto& part : parts) state->pending += !part.empty();
    for (const auto& part : parts) {
      if (part.empty()) continue;
      std::string body;
      std::string content_type = "application/json";
      bool all_utf8 = true;
      for (size_t i : part) all_utf8 = all_utf8 && IsValidUtf8(items[i].first);
      if (!with_values) {
        JsonWriter w(&body);
        w.BeginArray();
        for (size_t i : part) w.Bytes(items[i].first);
        w.EndArray();
      } else if (all_utf8) {
        JsonWriter w(&body);
        w.BeginObject();
        for (size_t i : part) {
          w.Key(items[i].first);
          w.Bytes(items[i].second);
        }
        w.EndObject();
      } else {
        // An object's names must be strings: binary keys go as NDJSON lines.
        content_type = "application/x-ndjson";
        for (size_t i : part) AppendKeyValueLine(&body, items[i].first, items[i].second);
      }
      auto call = NewCall("POST", endpoint, items[part.front()].first, [state, part](Response& r) {
        std::vector<KeyResult> got(part.size());
        const bool parsed = r.ok() && ParseBatchResults(r.body, &got);
        for (size_t n = 0; n < part.size(); ++n) {
          KeyResult& out = state->results[part[n]];
          if (!parsed) {
            out.status = r.status;
            out.error = r.error.empty() ? "bad_answer" : r.error;
            continue;
          }
          out.status = got[n].status;
          out.value = std::move(got[n].value);
          out.etag = got[n].etag;
          out.error = std::move(got[n].error);
        }
        if (!parsed) {
          state->summary.status = 207;
          state->summary.error = r.error;
          state->summary.message = r.message;
        }
        if (--state->pending == 0) state->done(state->summary, state->results);
      });
      call->body = std::move(body);
      call->idempotent = !with_values;  // _mget is a read
      call->headers.push_back({"Content-Type", content_type});
      SendNow(std::move(call));
    }
  };
  if (map.empty() || stale) {
    Refresh(std::move(start));
  } else {
    start(true, "");
  }
}

}  // namespace distkv::client
