// CRC-32C. The portable path is "slicing-by-8": eight 256-entry tables let the
// loop fold eight input bytes per step instead of one (table k holds the CRC
// of a byte followed by k zero bytes). The hardware path feeds eight bytes at
// a time to SSE4.2's crc32 instruction, which computes exactly this CRC.
#include "storage/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace distkv::storage::crc32c {

namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // Castagnoli, bit-reversed

using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++) {
    for (int k = 1; k < 8; k++) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
  }
  return t;
}

constexpr Tables kTables = MakeTables();

inline uint64_t LoadLE64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // x86 and the other targets we build for are little-endian
  return v;
}

using ExtendFn = uint32_t (*)(uint32_t, const void*, size_t);

ExtendFn Choose() { return HardwareAvailable() ? ExtendHardware : ExtendPortable; }

// Polynomials modulo P in the reflected bit order of the tables: bit 31 is
// x^0, bit 0 is x^31. The product of a and b, modulo P.
constexpr uint32_t MultiplyModP(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;  // b * x
  }
  return product;
}

// kPowers[k] = x^(8 * 2^k) modulo P: what appending 2^k zero bytes multiplies
// a CRC register by.
using Powers = std::array<uint32_t, 64>;
constexpr Powers MakePowers() {
  Powers p{};
  // x^8 is bit 31 - 8.
  uint32_t x = 1u << 23;
  for (uint32_t& e : p) {
    e = x;
    x = MultiplyModP(x, x);
  }
  return p;
}
constexpr Powers kPowers = MakePowers();

// Up to this distance XorDelta feeds zeros instead of multiplying.
constexpr size_t kZeroFeedBytes = 4096;

}  // namespace

uint32_t XorDelta(uint8_t byte, uint64_t bytes_after) {
  // The register after the one byte, from a zero register with no final
  // inversion (the inversions cancel between m and m'): the first table's
  // entry for it, ...
  uint32_t reg = kTables[0][byte];
  // ... then after bytes_after zero bytes. For a record-sized distance,
  // feeding the zeros through Extend (eight a crc32 instruction) is cheaper
  // than the multiplications below (a few hundred instructions each, one
  // per set bit of bytes_after); Extend inverts on the way in and out.
  if (bytes_after <= kZeroFeedBytes) {
    static constexpr std::array<uint8_t, kZeroFeedBytes> kZeros{};
    return ~Extend(~reg, kZeros.data(), bytes_after);
  }
  // Else times x^(8 * bytes_after), by squares.
  for (size_t k = 0; bytes_after != 0; k++, bytes_after >>= 1) {
    if (bytes_after & 1) reg = MultiplyModP(kPowers[k], reg);
  }
  return reg;
}

uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (n >= 8) {
    uint64_t v = LoadLE64(p) ^ c;
    c = kTables[7][v & 0xFF] ^ kTables[6][(v >> 8) & 0xFF] ^ kTables[5][(v >> 16) & 0xFF] ^
        kTables[4][(v >> 24) & 0xFF] ^ kTables[3][(v >> 32) & 0xFF] ^ kTables[2][(v >> 40) & 0xFF] ^
        kTables[1][(v >> 48) & 0xFF] ^ kTables[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xFF];
  return ~c;
}

#if defined(__x86_64__)

__attribute__((target("sse4.2"))) uint32_t ExtendHardware(uint32_t crc, const void* data,
                                                          size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  while (n >= 8) {
    c = _mm_crc32_u64(c, LoadLE64(p));
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

bool HardwareAvailable() { return __builtin_cpu_supports("sse4.2"); }

#else

uint32_t ExtendHardware(uint32_t crc, const void* data, size_t n) {
  return ExtendPortable(crc, data, n);
}
bool HardwareAvailable() { return false; }

#endif

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  static const ExtendFn fn = Choose();  // decided once; thread-safe static init
  return fn(crc, data, n);
}

}  // namespace distkv::storage::crc32c
