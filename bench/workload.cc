#include "bench/workload.h"

#include <cmath>
#include <cstdio>
#include <numeric>

namespace distkv::bench {

namespace {

uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// sum_{i=1..n} i^-theta: exact for the first million terms, the rest by the
// Euler-Maclaurin formula (the terms are smooth there; error far below 1e-9).
double Zeta(uint64_t n, double theta) {
  constexpr uint64_t kExact = 1'000'000;
  double sum = 0;
  uint64_t exact = n < kExact ? n : kExact;
  for (uint64_t i = 1; i <= exact; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
  if (n > exact) {
    double a = static_cast<double>(exact);
    double b = static_cast<double>(n);
    auto f = [theta](double x) { return std::pow(x, -theta); };
    sum += (std::pow(b, 1 - theta) - std::pow(a, 1 - theta)) / (1 - theta) + (f(b) - f(a)) / 2;
  }
  return sum;
}

}  // namespace

Rng::Rng(uint64_t seed) {
  for (uint64_t& s : s_) s = SplitMix64(&seed);
}

uint64_t Rng::Next() {
  uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

uint64_t Rng::Below(uint64_t n) {
  // Lemire's multiply-shift; the bias for n << 2^64 is negligible here.
  return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
}

double Rng::NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

KeyChooser::KeyChooser(uint64_t keys, bool zipf, double theta) : keys_(keys), zipf_(zipf) {
  if (!zipf_) return;
  theta_ = theta;
  zetan_ = Zeta(keys_, theta_);
  double zeta2 = 1.0 + 1.0 / std::pow(2.0, theta_);
  alpha_ = 1.0 / (1.0 - theta_);
  eta_ = (1.0 - std::pow(2.0 / static_cast<double>(keys_), 1.0 - theta_)) / (1.0 - zeta2 / zetan_);
  // A multiplier near keys * golden ratio, made coprime with keys.
  multiplier_ = static_cast<uint64_t>(static_cast<double>(keys_) * 0.6180339887) | 1;
  while (std::gcd(multiplier_, keys_) != 1) ++multiplier_;
  offset_ = keys_ / 3;
}

uint64_t KeyChooser::IndexOfRank(uint64_t rank) const {
  if (!zipf_) return rank;
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rank) * multiplier_ + offset_) %
                               keys_);
}

uint64_t KeyChooser::Next(Rng& rng) {
  if (!zipf_) return rng.Below(keys_);
  double u = rng.NextDouble();
  double uz = u * zetan_;
  uint64_t rank;
  if (uz < 1.0) {
    rank = 0;
  } else if (uz < 1.0 + std::pow(0.5, theta_)) {
    rank = 1;
  } else {
    rank =
        static_cast<uint64_t>(static_cast<double>(keys_) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
  }
  if (rank >= keys_) rank = keys_ - 1;
  return IndexOfRank(rank);
}

std::string KeyName(std::string_view prefix, uint64_t index) {
  std::string key(prefix);
  key += std::to_string(index);
  return key;
}

uint32_t KeyHash(std::string_view key) {
  uint32_t h = 2166136261u;
  for (unsigned char c : key) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string MakeValue(uint32_t run, std::string_view key, uint64_t version, size_t size) {
  char head[64];
  int n = std::snprintf(head, sizeof(head), "v%08x.%llu.%08x.", run,
                        static_cast<unsigned long long>(version), KeyHash(key));
  std::string value(head, static_cast<size_t>(n) < size ? static_cast<size_t>(n) : size);
  // Filler that differs between versions, so a torn or mixed value shows.
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t x = version * 0x9e3779b97f4a7c15ull + run;
  while (value.size() < size) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    value.push_back(kAlphabet[(x >> 33) % 36]);
  }
  return value;
}

ValueCheck CheckValue(uint32_t run, std::string_view key, std::string_view value, size_t size,
                      uint64_t* version) {
  // "v" run(8 hex) "." version "." hash(8 hex) "."
  if (value.size() < 1 + 8 + 1 + 1 + 1 + 8 + 1 || value[0] != 'v' || value[9] != '.')
    return ValueCheck::kMalformed;
  uint32_t value_run = 0;
  for (size_t i = 1; i < 9; ++i) {
    char c = value[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return ValueCheck::kMalformed;
    value_run = value_run * 16 + static_cast<uint32_t>(d);
  }
  size_t pos = 10;
  uint64_t v = 0;
  size_t digits = 0;
  while (pos < value.size() && value[pos] >= '0' && value[pos] <= '9' && digits < 20) {
    v = v * 10 + static_cast<uint64_t>(value[pos] - '0');
    ++pos;
    ++digits;
  }
  if (digits == 0 || pos >= value.size() || value[pos] != '.') return ValueCheck::kMalformed;
  if (value_run != run) return ValueCheck::kOtherRun;
  std::string_view hash = value.substr(pos + 1, 8);
  char expect[16];
  std::snprintf(expect, sizeof(expect), "%08x", KeyHash(key));
  if (hash != expect) return ValueCheck::kOtherKey;
  *version = v;
  if (value.size() != size || value != MakeValue(run, key, v, size)) return ValueCheck::kCorrupt;
  return ValueCheck::kOk;
}

}  // namespace distkv::bench
