#include "src/cluster/etcd_client.h"

#include <charconv>
#include <system_error>

#include <nlohmann/json.hpp>

#include "src/obs/json_bytes.h"
#include "src/obs/json_writer.h"

namespace distkv {
namespace {

// The gateway writes int64 as a JSON string ("42"); accept a number too.
// Anything else (a missing field, "12abc", a value past int64) reads as 0:
// no lease granted, a lease expired (TTL 0), and a revision that a later
// compare-and-put on an existing key fails against — never a wrong number.
int64_t Int64Field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (!it->is_string()) return 0;
  const std::string& text = it->get_ref<const std::string&>();
  int64_t v = 0;
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), v);
  return err == std::errc() && end == text.data() + text.size() ? v : 0;
}

// {"name":"value"}: the gateway's requests carry int64 as strings too.
std::string OneField(std::string_view name, std::string_view value) {
  std::string body;
  JsonWriter w(&body);
  w.BeginObject();
  w.Field(name, value);
  w.EndObject();
  return body;
}

// A txn comparison: {"target":T,"key":<base64>,"result":"EQUAL",<field>:<value>}.
std::string Compare(std::string_view target, const std::string& key, std::string_view field,
                    std::string_view value) {
  std::string body;
  JsonWriter w(&body);
  w.BeginObject();
  w.Field("target", target);
  w.Field("key", Base64Encode(key));
  w.Field("result", "EQUAL");
  w.Field(field, value);
  w.EndObject();
  return body;
}

}  // namespace

EtcdClient::EtcdClient(net::HttpClient* client, std::vector<std::string> endpoints,
                       uint64_t timeout_ms)
    : client_(client), endpoints_(std::move(endpoints)), timeout_ms_(timeout_ms) {}

void EtcdClient::Call(const std::string& path, std::string body,
                      std::function<void(bool ok, const std::string& json)> done) {
  net::OutboundRequest req;
  req.method = "POST";
  req.target = path;
  req.timeout_ms = timeout_ms_;
  req.headers.push_back(net::Header{"Content-Type", "application/json"});
  req.body = std::move(body);
  const size_t used = current_;
  client_->Request(endpoints_[used], std::move(req),
                   [this, used, path, done = std::move(done)](net::ClientResult& result) {
                     std::string error;
                     if (result.error != net::ClientError::kNone) {
                       error = "etcd " + endpoints_[used] + path + ": " + result.detail;
                     } else if (result.response.status != 200) {
                       error = "etcd " + endpoints_[used] + path + " answered " +
                               std::to_string(result.response.status) + ": " +
                               result.response.body.substr(0, 200);
                     }
                     if (!error.empty()) {
                       last_error_ = error;
                       if (used == current_) current_ = (current_ + 1) % endpoints_.size();
                       done(false, error);
                       return;
                     }
                     done(true, result.response.body);
                   });
}

void EtcdClient::Grant(int64_t ttl_s, LeaseDone done) {
  Call("/v3/lease/grant", OneField("TTL", std::to_string(ttl_s)),
       [done = std::move(done)](bool ok, const std::string& body) {
         if (!ok) return done(false, 0, 0);
         nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
         if (!j.is_object()) return done(false, 0, 0);
         const int64_t id = Int64Field(j, "ID");
         done(id != 0, id, Int64Field(j, "TTL"));
       });
}

void EtcdClient::KeepAlive(int64_t lease, LeaseDone done) {
  Call("/v3/lease/keepalive", OneField("ID", std::to_string(lease)),
       [lease, done = std::move(done)](bool ok, const std::string& body) {
         if (!ok) return done(false, lease, 0);
         nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
         if (!j.is_object() || !j.contains("result") || !j["result"].is_object()) {
           return done(false, lease, 0);
         }
         // TTL absent or 0: the lease has expired (or was revoked).
         done(true, lease, Int64Field(j["result"], "TTL"));
       });
}

void EtcdClient::Get(const std::string& key, GetDone done) {
  Call("/v3/kv/range", OneField("key", Base64Encode(key)),
       [done = std::move(done)](bool ok, const std::string& body) {
         EtcdKey k;
         if (!ok) return done(false, k);
         nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
         if (!j.is_object()) return done(false, k);
         auto kvs = j.find("kvs");
         if (kvs != j.end() && kvs->is_array() && !kvs->empty()) {
           const nlohmann::json& kv = (*kvs)[0];
           k.found = true;
           if (kv.contains("value") && kv["value"].is_string() &&
               !Base64Decode(kv["value"].get<std::string>(), &k.value)) {
             return done(false, k);
           }
           k.create_revision = Int64Field(kv, "create_revision");
           k.mod_revision = Int64Field(kv, "mod_revision");
           k.lease = Int64Field(kv, "lease");
         }
         done(true, k);
       });
}

void EtcdClient::Txn(std::string compare, std::string success, TxnDone done) {
  std::string body;
  JsonWriter w(&body);
  w.BeginObject();
  w.Key("compare");
  w.BeginArray();
  w.Raw(compare);
  w.EndArray();
  w.Key("success");
  w.BeginArray();
  w.Raw(success);
  w.EndArray();
  w.EndObject();
  Call("/v3/kv/txn", std::move(body), [done = std::move(done)](bool ok, const std::string& body) {
    if (!ok) return done(false, false);
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object()) return done(false, false);
    auto s = j.find("succeeded");
    done(true, s != j.end() && s->is_boolean() && s->get<bool>());
  });
}

namespace {

std::string PutOp(const std::string& key, const std::string& value, int64_t lease) {
  std::string op;
  JsonWriter w(&op);
  w.BeginObject();
  w.Key("request_put");
  w.BeginObject();
  w.Field("key", Base64Encode(key));
  w.Field("value", Base64Encode(value));
  if (lease != 0) w.Field("lease", std::to_string(lease));
  w.EndObject();
  w.EndObject();
  return op;
}

}  // namespace

void EtcdClient::PutIfAbsent(const std::string& key, const std::string& value, int64_t lease,
                             TxnDone done) {
  Txn(Compare("CREATE", key, "create_revision", "0"), PutOp(key, value, lease), std::move(done));
}

void EtcdClient::PutIfValue(const std::string& key, const std::string& expected,
                            const std::string& value, int64_t lease, TxnDone done) {
  Txn(Compare("VALUE", key, "value", Base64Encode(expected)), PutOp(key, value, lease),
      std::move(done));
}

void EtcdClient::PutIfModRevision(const std::string& key, int64_t mod_revision,
                                  const std::string& value, TxnDone done) {
  Txn(Compare("MOD", key, "mod_revision", std::to_string(mod_revision)), PutOp(key, value, 0),
      std::move(done));
}

void EtcdClient::DeleteIfValue(const std::string& key, const std::string& expected, TxnDone done) {
  std::string op;
  JsonWriter w(&op);
  w.BeginObject();
  w.Key("request_delete_range");
  w.BeginObject();
  w.Field("key", Base64Encode(key));
  w.EndObject();
  w.EndObject();
  Txn(Compare("VALUE", key, "value", Base64Encode(expected)), std::move(op), std::move(done));
}

}  // namespace distkv
