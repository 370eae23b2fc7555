// Scan requests: limits, cursors, the node-to-node page format (binary keys
// and values survive), and the JSON page with base64 for non-UTF-8 bytes.
#include <doctest/doctest.h>

#include "src/api/scan_request.h"
#include "src/obs/json_bytes.h"
#include "src/obs/utf8.h"

using namespace distkv;

TEST_CASE("scan cursor round-trips and rejects malformed text") {
  size_t shard = 0;
  uint64_t hash = 0, owners = 0;
  const std::string c = FormatScanCursor(3, 0xfedcba9876543210ull, 0x42);
  CHECK(c == "3-fedcba9876543210-0000000000000042");
  REQUIRE(ParseScanCursor(c, &shard, &hash, &owners));
  CHECK(shard == 3);
  CHECK(hash == 0xfedcba9876543210ull);
  CHECK(owners == 0x42);
  for (const char* bad : {"", "3", "-1", "x-1", "3-", "3-1g", "3-1", "3-1-", "3-1-x", "3--1",
                          "3-11111111111111111111111-1"})
    CHECK_MESSAGE(!ParseScanCursor(bad, &shard, &hash, &owners), bad);
}

TEST_CASE("scan request: defaults, limits and errors") {
  ScanRequest r;
  net::HttpResponse error;
  REQUIRE(ParseScanRequest({}, &r, &error));
  CHECK(r.limit == kScanDefaultLimit);
  CHECK(r.shard == 0);
  REQUIRE(ParseScanRequest({{"limit", "10000"}, {"prefix", "a/"}, {"values", "true"}}, &r, &error));
  CHECK(r.limit == 10000);
  CHECK(r.prefix == "a/");
  CHECK(r.values);
  CHECK_FALSE(ParseScanRequest({{"limit", "10001"}}, &r, &error));
  CHECK(error.status == 400);
  CHECK_FALSE(ParseScanRequest({{"cursor", "nope"}}, &r, &error));
  CHECK(error.status == 400);
}

TEST_CASE("shard scan page: binary keys and values survive the node-to-node format") {
  ShardScanPage page;
  page.next = 0x1234;
  page.end = false;
  page.entries.push_back({std::string("k\0\n1", 4), std::string("v \n\0", 4), 7});
  page.entries.push_back({"plain", "", 9});
  ShardScanPage back;
  REQUIRE(DecodeShardScanPage(EncodeShardScanPage(page), &back));
  CHECK(back.next == 0x1234);
  CHECK_FALSE(back.end);
  REQUIRE(back.entries.size() == 2);
  CHECK(back.entries[0].key == page.entries[0].key);
  CHECK(back.entries[0].value == page.entries[0].value);
  CHECK(back.entries[1].lsn == 9);
  std::string enc = EncodeShardScanPage(page);
  CHECK_FALSE(DecodeShardScanPage(enc.substr(0, enc.size() - 1), &back));  // truncated
}

TEST_CASE("scan JSON: UTF-8 as strings, other bytes as base64 objects") {
  std::string out;
  AppendScanJson(&out, {{"caf\xc3\xa9", std::string("\xff\x00", 2), 1}}, true, "1-00");
  CHECK(out ==
        "{\"keys\":[\"caf\xc3\xa9\"],\"values\":[{\"base64\":\"/wA=\"}],\"cursor\":\"1-00\"}\n");
  std::string decoded;
  REQUIRE(Base64Decode("/wA=", &decoded));
  CHECK(decoded == std::string("\xff\x00", 2));
  CHECK_FALSE(Base64Decode("/wA", &decoded));
  CHECK_FALSE(IsValidUtf8("\xed\xa0\x80"));  // a surrogate
  CHECK_FALSE(IsValidUtf8("\xc0\xaf"));      // overlong
  CHECK(IsValidUtf8("\xf0\x9f\x98\x80"));
}

TEST_CASE("shard scan page: lengths whose sum wraps around 64 bits are refused") {
  // A peer's page is read in a libuv callback, where an exception ends the
  // node. Key and value lengths adding up past 2^64 once passed the "bytes
  // left" check: substr threw, or the same bytes were read twice (the first
  // key and value overlap the second entry's line, and the page was taken).
  const std::string huge = "18446744073709551615";  // 2^64 - 1
  for (const std::string& body : {"0 0 1\n" + huge + " 1 0\nab", "0 0 1\n1 " + huge + " 0\n",
                                  "0 0 2\n1 " + huge + " 0\n0 0 0\n"}) {
    INFO(body);
    ShardScanPage page;
    CHECK_NOTHROW(CHECK_FALSE(DecodeShardScanPage(body, &page)));
  }
}
