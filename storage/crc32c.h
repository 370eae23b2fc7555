// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
// every log record. Two implementations give identical results: SSE4.2's
// crc32 instruction where the CPU has it (detected once, at first use), and a
// portable table-driven slicing-by-8 loop everywhere else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace distkv::storage::crc32c {

// Continues a CRC over more bytes: Extend(Value(a), b) == Value(a + b).
uint32_t Extend(uint32_t crc, const void* data, size_t n);

inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

// How Value(m) changes when `byte` is XORed into one byte of m that is
// followed by `bytes_after` more bytes: Value(m') == Value(m) ^ XorDelta(...)
// for m' of the same length. The CRC is linear in the data, so the change
// depends on the flipped bits and their distance from the end alone; this
// lets a record's type bit be changed without reading the record again
// (O(log bytes_after) for a large record; a small one's distance is fed as
// zeros, which costs less than the log-time method and reads nothing).
uint32_t XorDelta(uint8_t byte, uint64_t bytes_after);

// The two implementations, exposed so tests can compare them.
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);
// Only callable when HardwareAvailable().
uint32_t ExtendHardware(uint32_t crc, const void* data, size_t n);
bool HardwareAvailable();

}  // namespace distkv::storage::crc32c
