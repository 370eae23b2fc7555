// Fixed-width little-endian integers, the byte order of every on-disk and
// on-wire format of the project (records, replication frames). They need no
// alignment. On a little-endian host they are one unaligned load or store
// (memcpy): the byte loop below, which any host can run, is not turned into
// one by the compiler at -O2, and recovery decodes tens of millions of them.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace distkv::storage {

inline void EncodeFixed32(char* p, uint32_t v) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &v, sizeof v);
  } else {
    for (int i = 0; i < 4; i++) p[i] = static_cast<char>(v >> (8 * i));
  }
}

inline void EncodeFixed64(char* p, uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &v, sizeof v);
  } else {
    for (int i = 0; i < 8; i++) p[i] = static_cast<char>(v >> (8 * i));
  }
}

inline uint32_t DecodeFixed32(const char* p) {
  uint32_t v = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&v, p, sizeof v);
  } else {
    for (int i = 3; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(p[i]);
  }
  return v;
}

inline uint64_t DecodeFixed64(const char* p) {
  uint64_t v = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&v, p, sizeof v);
  } else {
    for (int i = 7; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(p[i]);
  }
  return v;
}

}  // namespace distkv::storage
