// CRC-32C: published check values, and agreement of the two implementations.
#include <doctest/doctest.h>

#include <string>

#include "storage/crc32c.h"

using namespace distkv::storage;

TEST_CASE("CRC-32C of known vectors") {
  CHECK(crc32c::Value("123456789") == 0xE3069283u);
  CHECK(crc32c::Value("") == 0u);
  // RFC 3720 (iSCSI) B.4 test patterns.
  CHECK(crc32c::Value(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc32c::Value(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string inc(32, 0), dec(32, 0);
  for (int i = 0; i < 32; i++) {
    inc[i] = static_cast<char>(i);
    dec[i] = static_cast<char>(31 - i);
  }
  CHECK(crc32c::Value(inc) == 0x46DD794Eu);
  CHECK(crc32c::Value(dec) == 0x113FDB5Cu);
}

TEST_CASE("CRC-32C portable and hardware paths agree at every length and alignment") {
  std::string data(300, 0);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 131 + 7);
  CHECK(crc32c::ExtendPortable(0, "123456789", 9) == 0xE3069283u);
  for (size_t start = 0; start < 9; start++) {
    for (size_t n = 0; start + n <= data.size(); n += 13) {
      const uint32_t portable = crc32c::ExtendPortable(0, data.data() + start, n);
      if (crc32c::HardwareAvailable()) {
        CHECK(crc32c::ExtendHardware(0, data.data() + start, n) == portable);
      }
      CHECK(crc32c::Value(data.data() + start, n) == portable);
    }
  }
}

TEST_CASE("CRC-32C Extend continues a CRC") {
  const std::string a = "hello, ", b = "world";
  CHECK(crc32c::Extend(crc32c::Value(a), b.data(), b.size()) == crc32c::Value(a + b));
  CHECK(crc32c::ExtendPortable(crc32c::ExtendPortable(0, a.data(), a.size()), b.data(), b.size()) ==
        crc32c::Value(a + b));
}

TEST_CASE("CRC-32C XorDelta gives the CRC of the message with a byte changed") {
  std::string m;
  for (int i = 0; i < 5000; i++) m += static_cast<char>('a' + i * 7 % 26);
  // Both ways of computing it: zeros fed (distances up to 4096), and by
  // multiplication (beyond).
  for (size_t len : {1, 2, 9, 21, 64, 130, 4096, 4097, 4098, 5000}) {
    for (size_t at : {size_t{0}, len / 3, len - 1}) {
      for (uint8_t flip : {0x01, 0x20, 0x80, 0xFF}) {
        std::string changed = m.substr(0, len);
        changed[at] = static_cast<char>(changed[at] ^ flip);
        CAPTURE(len);
        CAPTURE(at);
        CHECK((crc32c::Value(m.data(), len) ^ crc32c::XorDelta(flip, len - at - 1)) ==
              crc32c::Value(changed));
      }
    }
  }
}
