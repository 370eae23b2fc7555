#include "src/api/scan_request.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "src/obs/json_writer.h"
#include "storage/number.h"

namespace distkv {

namespace {

// Cursors and limits come from users: upper-case hex is taken too.
bool ParseUint(std::string_view s, int base, uint64_t* out) {
  return storage::ParseUint(s, base, out, storage::HexCase::kAny);
}

bool IsTrue(const std::string& v) { return v == "true" || v == "1" || v == "yes"; }

bool ParseCommon(const std::string& name, const std::string& value, ScanRequest* out,
                 net::HttpResponse* error) {
  if (name == "prefix") {
    out->prefix = value;
  } else if (name == "values") {
    out->values = IsTrue(value);
  } else if (name == "limit") {
    uint64_t n = 0;
    if (!ParseUint(value, 10, &n) || n == 0 || n > kScanMaxLimit) {
      *error = net::MakeErrorResponse(
          400, "bad_limit", "limit must be a number from 1 to " + std::to_string(kScanMaxLimit));
      return false;
    }
    out->limit = static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

bool ParseScanRequest(const QueryParams& params, ScanRequest* out, net::HttpResponse* error) {
  for (const auto& [name, value] : params) {
    if (!ParseCommon(name, value, out, error)) return false;
    if (name == "cursor" && !value.empty() &&
        !ParseScanCursor(value, &out->shard, &out->hash, &out->owners)) {
      *error = net::MakeErrorResponse(400, "bad_cursor",
                                      "the cursor must be one a scan page returned "
                                      "(\"<shard>-<hex>-<hex>\"), or empty to start");
      return false;
    }
  }
  return true;
}

bool ParseShardScanRequest(const QueryParams& params, ScanRequest* out, net::HttpResponse* error) {
  for (const auto& [name, value] : params) {
    if (!ParseCommon(name, value, out, error)) return false;
    if (name == "shard") out->shard_name = value;
    if (name == "hash" && !ParseUint(value, 16, &out->hash)) {
      *error = net::MakeErrorResponse(400, "bad_hash", "hash must be hexadecimal");
      return false;
    }
  }
  return true;
}

std::string ShardScanTarget(const ScanRequest& scan, std::string_view shard_name, size_t limit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "/internal/scan?hash=%" PRIx64 "&limit=%zu", scan.hash, limit);
  std::string t = buf;
  if (scan.values) t += "&values=1";
  t += "&shard=";
  net::AppendPercentEncoded(&t, shard_name);
  if (!scan.prefix.empty()) {
    t += "&prefix=";
    net::AppendPercentEncoded(&t, scan.prefix);
  }
  return t;
}

std::string FormatScanCursor(size_t shard, uint64_t hash, uint64_t owners) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%zu-%016" PRIx64 "-%016" PRIx64, shard, hash, owners);
  return buf;
}

bool ParseScanCursor(std::string_view text, size_t* shard, uint64_t* hash, uint64_t* owners) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return false;
  const size_t dash2 = text.find('-', dash + 1);
  if (dash2 == std::string_view::npos) return false;
  uint64_t s = 0;
  if (!ParseUint(text.substr(0, dash), 10, &s) || s > 65535) return false;
  if (!ParseUint(text.substr(dash + 1, dash2 - dash - 1), 16, hash)) return false;
  if (!ParseUint(text.substr(dash2 + 1), 16, owners)) return false;
  *shard = static_cast<size_t>(s);
  return true;
}

std::string EncodeShardScanPage(const ShardScanPage& page) {
  std::string out;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%" PRIx64 " %d %zu\n", page.next, page.end ? 1 : 0,
                page.entries.size());
  out += buf;
  for (const ShardScanEntry& e : page.entries) {
    std::snprintf(buf, sizeof buf, "%zu %zu %" PRIu64 "\n", e.key.size(), e.value.size(), e.lsn);
    out += buf;
    out += e.key;
    out += e.value;
  }
  return out;
}

bool DecodeShardScanPage(std::string_view body, ShardScanPage* page) {
  auto line = [&body](std::string_view* l) {
    const size_t nl = body.find('\n');
    if (nl == std::string_view::npos) return false;
    *l = body.substr(0, nl);
    body.remove_prefix(nl + 1);
    return true;
  };
  auto fields = [](std::string_view l, std::string_view f[3]) {
    for (int i = 0; i < 3; ++i) {
      const size_t sp = l.find(' ');
      f[i] = l.substr(0, sp);
      l = sp == std::string_view::npos ? std::string_view() : l.substr(sp + 1);
    }
  };
  std::string_view l, f[3];
  uint64_t end = 0, count = 0;
  if (!line(&l)) return false;
  fields(l, f);
  if (!ParseUint(f[0], 16, &page->next) || !ParseUint(f[1], 10, &end) ||
      !ParseUint(f[2], 10, &count)) {
    return false;
  }
  page->end = end != 0;
  page->entries.clear();
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t klen, vlen;
    ShardScanEntry e;
    if (!line(&l)) return false;
    fields(l, f);
    // Each length against what is left, not their sum: a peer's two lengths
    // can add up past 2^64 and wrap to a small number.
    if (!ParseUint(f[0], 10, &klen) || !ParseUint(f[1], 10, &vlen) ||
        !ParseUint(f[2], 10, &e.lsn) || klen > body.size() || vlen > body.size() - klen) {
      return false;
    }
    e.key.assign(body.substr(0, klen));
    e.value.assign(body.substr(klen, vlen));
    body.remove_prefix(klen + vlen);
    page->entries.push_back(std::move(e));
  }
  return body.empty();
}

void AppendScanJson(std::string* out, const std::vector<ShardScanEntry>& entries, bool values,
                    std::string_view cursor) {
  JsonWriter w(out);
  w.BeginObject();
  w.Key("keys");
  w.BeginArray();
  for (const ShardScanEntry& e : entries) w.Bytes(e.key);
  w.EndArray();
  if (values) {
    w.Key("values");
    w.BeginArray();
    for (const ShardScanEntry& e : entries) w.Bytes(e.value);
    w.EndArray();
  }
  w.Field("cursor", cursor);
  w.EndObject();
  *out += '\n';
}

}  // namespace distkv
