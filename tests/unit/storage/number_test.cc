// storage/number.h: the one text-to-number parser, strict in every case.
#include "storage/number.h"

#include <doctest/doctest.h>

namespace distkv::storage {
namespace {

TEST_CASE("ParseUint: decimal and hex, up to UINT64_MAX exactly") {
  uint64_t v = 0;
  CHECK((ParseUint("0", 10, &v) && v == 0));
  CHECK((ParseUint("18446744073709551615", 10, &v) && v == UINT64_MAX));
  CHECK((ParseUint("ffffffffffffffff", 16, &v) && v == UINT64_MAX));
  CHECK((ParseUint("00000000000000000042", 10, &v) && v == 42));
  CHECK((ParseUint("1c6b0e4a", 16, &v) && v == 0x1c6b0e4a));
}

TEST_CASE("ParseUint: refuses overflow, signs, spaces, prefixes, empty and foreign digits") {
  uint64_t v = 7;
  for (const char* bad : {"", "18446744073709551616", "99999999999999999999", "-1", "+1", " 1",
                          "1 ", "0x10", "1a", "١"}) {
    CHECK_MESSAGE(!ParseUint(bad, 10, &v), bad);
  }
  for (const char* bad : {"", "10000000000000000", "0x1", "g", "-f", "000000000000000000001"}) {
    CHECK_MESSAGE(!ParseUint(bad, 16, &v), bad);
  }
  CHECK(v == 7);  // untouched by a refusal
}

TEST_CASE("ParseUint: upper-case hex only when the caller allows it") {
  uint64_t v = 0;
  CHECK_FALSE(ParseUint("ABCDEF", 16, &v));
  CHECK_FALSE(ParseUint("aBc", 16, &v, HexCase::kLower));
  CHECK((ParseUint("ABCDEF", 16, &v, HexCase::kAny) && v == 0xabcdef));
  CHECK((ParseUint("aBc", 16, &v, HexCase::kAny) && v == 0xabc));
  CHECK_FALSE(ParseUint("A", 10, &v, HexCase::kAny));  // no letters in decimal
}

}  // namespace
}  // namespace distkv::storage
