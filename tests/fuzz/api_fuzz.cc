// Fuzz target: the API layer's parsers (src/api/), which read bytes from
// clients (request targets, headers, batch bodies, scan cursors) and from
// peers (a forwarded batch part's answer, a shard's scan page).
//
// The first byte picks the parser (its value modulo kModes) and a variant
// (the value divided by kModes: for the batch bodies, the Content-Type); the
// second byte is the node's limits (max_key_bytes in the low nibble,
// max_value_bytes in the next three bits), or for a batch answer the number
// of results expected. The rest is the text:
//   kRequest     "METHOD target\nName: value\n...\n\nbody" as the server
//                hands it to ParseRequest (target split at '?', header
//                values trimmed); a batch it accepts also goes through its
//                body parser with the request's Content-Type;
//   kMget/kMput  a batch body, ParseMgetBody / ParseMputBody;
//   kBatchAnswer an owner's answer to a forwarded part, DecodeBatchJson;
//   kScan        a scan cursor (ParseScanCursor), and the query of
//                GET /kv?... and GET /internal/scan?...;
//   kShardPage   a shard's scan page, DecodeShardScanPage.
// What is accepted must hold up: keys within the limits, a key percent-encoded
// again (net::PercentEncode) and parsed again gives the same operation, a
// batch re-encoded the way a node forwards it parses to the same items on the
// owner, a decoded answer or page encodes and decodes to itself, a cursor and
// a shard scan target formatted from a parsed request parse to the same
// position. A refusal is an HTTP error with a body. Nothing may throw: these
// run inside libuv callbacks, where an exception ends the process.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_message.h"
#include "src/api/batch_request.h"
#include "src/api/kv_request.h"
#include "src/api/scan_request.h"

namespace distkv {
namespace {

enum Mode { kRequest, kMget, kMput, kBatchAnswer, kScan, kShardPage, kModes };

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "check failed: %s\n", what);
    abort();
  }
}

KeyLimits LimitsFrom(uint8_t b) {
  static constexpr size_t kKeys[16] = {1,  2,   3,   4,   5,    8,    16,   32,
                                       64, 100, 255, 256, 1000, 4096, 4096, 65535};
  static constexpr size_t kValues[8] = {16u << 20, 0, 1, 5, 64, 1000, 16u << 20, 16u << 20};
  KeyLimits limits;
  limits.max_key_bytes = kKeys[b & 15];
  limits.max_value_bytes = kValues[(b >> 4) & 7];
  return limits;
}

// A request target the server passes on: visible ASCII only (it refuses
// anything else before a handler sees it).
bool IsTargetText(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

void SetTarget(net::HttpRequest* r, std::string target) {
  r->target = std::move(target);
  const size_t q = r->target.find('?');
  r->path = r->target.substr(0, q);
  r->query = q == std::string::npos ? "" : r->target.substr(q + 1);
}

// "METHOD target\nName: value\n...\n\nbody" into what llhttp and
// ServerConnection would build; false for what the server would refuse first.
bool BuildRequest(std::string_view text, net::HttpRequest* r) {
  auto next_line = [&text](std::string_view* line) {
    if (text.empty()) return false;
    const size_t nl = text.find('\n');
    *line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    return true;
  };
  std::string_view line;
  if (!next_line(&line)) return false;
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return false;
  static constexpr std::string_view kMethods[] = {"GET",     "HEAD",  "PUT",   "POST",
                                                  "DELETE",  "PATCH", "TRACE", "OPTIONS",
                                                  "CONNECT", "PURGE", "REPORT"};
  r->method.clear();
  for (std::string_view m : kMethods) {
    if (line.substr(0, sp) == m) r->method = m;
  }
  const std::string_view target = line.substr(sp + 1);
  if (r->method.empty() || target.empty() || target.front() != '/' || !IsTargetText(target))
    return false;
  SetTarget(r, std::string(target));
  while (next_line(&line) && !line.empty()) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) return false;
    std::string_view value = line.substr(colon + 1);
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
    }
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    r->headers.push_back(net::Header{std::string(line.substr(0, colon)), std::string(value)});
  }
  r->body.assign(text);
  return true;
}

bool SameKv(const KvRequest& a, const KvRequest& b) {
  return a.op == b.op && a.key == b.key && a.value == b.value && a.if_match == b.if_match &&
         a.has_if_match == b.has_if_match && a.if_none_match_star == b.if_none_match_star &&
         a.if_none_match == b.if_none_match && a.read_replica == b.read_replica &&
         a.ack_replica == b.ack_replica && a.ttl_s == b.ttl_s;
}

void CheckError(const net::HttpResponse& error) {
  Check(error.status >= 400 && error.status <= 599, "a refusal is a 4xx or 5xx");
  Check(!error.body.empty(), "a refusal says why");
}

void CheckMget(std::string_view body, const std::string* type, size_t max_key_bytes) {
  std::vector<BatchItem> items;
  net::HttpResponse error;
  if (!ParseMgetBody(body, type, max_key_bytes, &items, &error)) {
    CheckError(error);
    return;
  }
  Check(!items.empty() && items.size() <= kBatchMaxItems, "1 to kBatchMaxItems keys");
  std::vector<size_t> all;
  for (size_t i = 0; i < items.size(); ++i) {
    Check(!items[i].key.empty() && items[i].key.size() <= max_key_bytes, "keys within the limit");
    Check(items[i].value.empty(), "an _mget item has no value");
    all.push_back(i);
  }
  // The part a node forwards to the owner, which parses it with the same limit.
  const std::string forwarded = EncodeMgetBody(items, all);
  const std::string json = "application/json";
  std::vector<BatchItem> back;
  Check(ParseMgetBody(forwarded, &json, max_key_bytes, &back, &error),
        "a forwarded _mget part parses on the owner");
  Check(back.size() == items.size(), "the owner reads as many keys");
  for (size_t i = 0; i < items.size(); ++i) Check(back[i].key == items[i].key, "the same keys");
}

void CheckMput(std::string_view body, const std::string* type, const KeyLimits& limits) {
  std::vector<BatchItem> items;
  net::HttpResponse error;
  if (!ParseMputBody(body, type, limits.max_key_bytes, limits.max_value_bytes, &items, &error)) {
    CheckError(error);
    return;
  }
  Check(!items.empty() && items.size() <= kBatchMaxItems, "1 to kBatchMaxItems items");
  std::vector<size_t> all;
  for (size_t i = 0; i < items.size(); ++i) {
    Check(!items[i].key.empty() && items[i].key.size() <= limits.max_key_bytes,
          "keys within the limit");
    Check(items[i].value.size() <= limits.max_value_bytes, "values within the limit");
    all.push_back(i);
  }
  const std::string forwarded = EncodeMputBody(items, all);
  const std::string ndjson = "application/x-ndjson";
  std::vector<BatchItem> back;
  Check(ParseMputBody(forwarded, &ndjson, limits.max_key_bytes, limits.max_value_bytes, &back,
                      &error),
        "a forwarded _mput part parses on the owner");
  Check(back.size() == items.size(), "the owner reads as many items");
  for (size_t i = 0; i < items.size(); ++i) {
    Check(back[i].key == items[i].key && back[i].value == items[i].value, "the same items");
  }
}

void CheckBatchAnswer(std::string_view body, size_t n) {
  std::vector<BatchResult> results;
  if (!DecodeBatchJson(body, n, &results)) return;
  Check(results.size() == n, "exactly n results");
  std::vector<BatchItem> items(n);
  for (size_t i = 0; i < n; ++i) {
    Check(results[i].status >= 100 && results[i].status <= 599, "an HTTP status");
    Check(results[i].has_value || results[i].value.empty(), "a value only with has_value");
    items[i].key = "k" + std::to_string(i);
  }
  // An owner's answer as a node passes it on (AppendBatchJson) reads the same.
  std::string again;
  AppendBatchJson(&again, items, results);
  std::vector<BatchResult> back;
  Check(DecodeBatchJson(again, n, &back), "a re-encoded answer decodes");
  for (size_t i = 0; i < n; ++i) {
    const BatchResult& a = results[i];
    const BatchResult& b = back[i];
    Check(a.status == b.status && a.value == b.value && a.has_value == b.has_value &&
              a.lsn == b.lsn && a.error == b.error,
          "a re-encoded answer decodes to the same results");
  }
}

void CheckCursor(std::string_view text) {
  size_t shard = 0;
  uint64_t hash = 0, owners = 0;
  if (!ParseScanCursor(text, &shard, &hash, &owners)) return;
  Check(shard <= 65535, "a cursor's shard fits the map");
  const std::string canonical = FormatScanCursor(shard, hash, owners);
  size_t s2 = 0;
  uint64_t h2 = 0, o2 = 0;
  Check(ParseScanCursor(canonical, &s2, &h2, &o2) && s2 == shard && h2 == hash && o2 == owners,
        "a cursor formatted again names the same position");
}

// What the node asks a shard for (ShardScanTarget) must read, on that shard,
// as the same position, limit, prefix and flag.
void CheckShardScanTarget(const ScanRequest& scan) {
  const std::string name = scan.shard_name.empty() ? scan.prefix : scan.shard_name;
  const std::string target = ShardScanTarget(scan, name, scan.limit);
  Check(IsTargetText(target), "a shard scan target is visible ASCII");
  net::HttpRequest r;
  r.method = "GET";
  SetTarget(&r, target);
  ParsedRequest parsed;
  net::HttpResponse error;
  Check(ParseRequest(r, KeyLimits{}, &parsed, &error), "a shard scan target parses");
  Check(parsed.endpoint == Endpoint::kShardScan, "a shard scan target is /internal/scan");
  const ScanRequest& back = parsed.scan;
  Check(back.hash == scan.hash && back.limit == scan.limit && back.values == scan.values &&
            back.prefix == scan.prefix && back.shard_name == name,
        "a shard scan target reads as the request it came from");
}

void CheckParsedScan(const ParsedRequest& parsed) {
  const ScanRequest& scan = parsed.scan;
  Check(scan.limit >= 1 && scan.limit <= kScanMaxLimit, "scan limit within 1..kScanMaxLimit");
  if (parsed.endpoint == Endpoint::kScan) {
    CheckCursor(FormatScanCursor(scan.shard, scan.hash, scan.owners));
  }
  CheckShardScanTarget(scan);
}

// The query as a client with another (strict) encoder would write it.
std::string ReencodeQuery(const QueryParams& params) {
  std::string q;
  for (const auto& [name, value] : params) {
    if (!q.empty()) q += '&';
    net::AppendPercentEncoded(&q, name);
    q += '=';
    net::AppendPercentEncoded(&q, value);
  }
  return q;
}

void CheckKv(const net::HttpRequest& original, const ParsedRequest& parsed,
             const KeyLimits& limits) {
  const KvRequest& kv = parsed.kv;
  Check(!kv.key.empty() && kv.key.size() <= limits.max_key_bytes, "a key within the limit");
  Check(kv.op == KvOp::kPut || kv.value.empty(), "only a put has a value");
  Check(kv.value.size() <= limits.max_value_bytes, "a value within the limit");
  Check(kv.ttl_s <= kMaxTtlSeconds, "a TTL within the limit");
  Check(kv.op == KvOp::kPut || kv.ttl_s == 0, "only a put has a TTL");
  Check(kv.has_if_match || kv.if_match.empty(), "If-Match only when given");
  if (kv.has_if_match && kv.if_match != "*") {
    Check(!kv.if_match.empty() && kv.if_match.find_first_not_of("0123456789") == std::string::npos,
          "If-Match is an LSN or *");
  }
  Check(kv.if_none_match.empty() || kv.op == KvOp::kGet, "ETags in If-None-Match only on reads");

  std::string decoded;
  const std::string encoded = net::PercentEncode(kv.key);
  Check(net::PercentDecode(encoded, &decoded, false) && decoded == kv.key,
        "PercentEncode then PercentDecode gives the key back");
  Check(IsTargetText(encoded), "an encoded key is visible ASCII");

  // The same request with the key, and every query parameter, percent-encoded
  // again. POST to the key "_mget" or "_mput" written plainly is the batch
  // endpoint (README, Batches): only an escaped name reaches those keys.
  const bool kv_path = original.path.rfind("/kv/", 0) == 0;
  if (kv_path && original.method == "POST" && (kv.key == "_mget" || kv.key == "_mput")) return;
  QueryParams params;
  Check(net::ParseQuery(original.query, &params), "an accepted query parses");
  const std::string query = ReencodeQuery(params);
  net::HttpRequest again = original;
  SetTarget(&again,
            (kv_path ? "/kv/" + encoded : original.path) + (query.empty() ? "" : "?" + query));
  Check(IsTargetText(again.target), "a re-encoded target is visible ASCII");
  ParsedRequest reparsed;
  net::HttpResponse error;
  Check(ParseRequest(again, limits, &reparsed, &error), "a re-encoded request parses");
  Check(reparsed.endpoint == Endpoint::kKv && SameKv(kv, reparsed.kv),
        "a re-encoded request is the same operation");
}

void CheckRequest(net::HttpRequest r, const KeyLimits& limits) {
  const net::HttpRequest original = r;  // ParseRequest may move the body out
  ParsedRequest parsed;
  net::HttpResponse error;
  if (!ParseRequest(r, limits, &parsed, &error)) {
    CheckError(error);
    return;
  }
  switch (parsed.endpoint) {
    case Endpoint::kKv:
      CheckKv(original, parsed, limits);
      break;
    case Endpoint::kScan:
    case Endpoint::kShardScan:
      CheckParsedScan(parsed);
      break;
    case Endpoint::kMget:
      CheckMget(original.body, original.header("Content-Type"), limits.max_key_bytes);
      break;
    case Endpoint::kMput:
      CheckMput(original.body, original.header("Content-Type"), limits);
      break;
    default:
      break;
  }
}

void CheckScanQuery(std::string_view text, const KeyLimits& limits) {
  CheckCursor(text);
  if (!IsTargetText(text)) return;
  for (const char* path : {"/kv?", "/internal/scan?"}) {
    net::HttpRequest r;
    r.method = "GET";
    SetTarget(&r, path + std::string(text));
    CheckRequest(std::move(r), limits);
  }
}

bool SamePage(const ShardScanPage& a, const ShardScanPage& b) {
  if (a.next != b.next || a.end != b.end || a.entries.size() != b.entries.size()) return false;
  for (size_t i = 0; i < a.entries.size(); ++i) {
    const ShardScanEntry& x = a.entries[i];
    const ShardScanEntry& y = b.entries[i];
    if (x.key != y.key || x.value != y.value || x.lsn != y.lsn) return false;
  }
  return true;
}

void CheckShardPage(std::string_view body) {
  ShardScanPage page;
  page.entries.push_back({"stale", "entry", 1});  // a reused page must not keep it
  if (!DecodeShardScanPage(body, &page)) return;
  // Every byte is read once: a line, then each entry's line, key and value,
  // back to back to the end.
  size_t at = body.find('\n');
  Check(at != std::string_view::npos, "a page starts with a line");
  ++at;
  for (const ShardScanEntry& e : page.entries) {
    const size_t nl = body.find('\n', at);
    Check(nl != std::string_view::npos, "an entry starts with a line");
    at = nl + 1;
    Check(body.substr(at, e.key.size()) == e.key, "a key is the bytes after its line");
    at += e.key.size();
    Check(body.substr(at, e.value.size()) == e.value, "a value is the bytes after its key");
    at += e.value.size();
  }
  Check(at == body.size(), "a page's entries end where its bytes do");
  const std::string encoded = EncodeShardScanPage(page);
  ShardScanPage back;
  Check(DecodeShardScanPage(encoded, &back), "an encoded page decodes");
  Check(SamePage(page, back), "an encoded then decoded page equals the decoded one");
  Check(EncodeShardScanPage(back) == encoded, "a page encodes one way");
}

}  // namespace
}  // namespace distkv

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace distkv;
  if (size < 2) return 0;
  const int mode = data[0] % kModes;
  const int variant = data[0] / kModes;
  const KeyLimits limits = LimitsFrom(data[1]);
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  // The Content-Types a batch body is sent with, or none.
  static const std::string kTypes[] = {"application/json",
                                       "text/plain",
                                       "application/x-ndjson",
                                       "text/plain; charset=utf-8",
                                       "application/x-ndjson; charset=utf-8",
                                       "application/octet-stream"};
  const size_t types = sizeof kTypes / sizeof kTypes[0];
  const size_t pick = static_cast<size_t>(variant) % (types + 1);
  const std::string* type = pick < types ? &kTypes[pick] : nullptr;
  switch (mode) {
    case kRequest: {
      net::HttpRequest r;
      if (BuildRequest(text, &r)) CheckRequest(std::move(r), limits);
      break;
    }
    case kMget:
      CheckMget(text, type, limits.max_key_bytes);
      break;
    case kMput:
      CheckMput(text, type, limits);
      break;
    case kBatchAnswer:
      CheckBatchAnswer(text, data[1]);
      break;
    case kScan:
      CheckScanQuery(text, limits);
      break;
    case kShardPage:
      CheckShardPage(text);
      break;
  }
  return 0;
}
