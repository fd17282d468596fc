// A tiny portable PRNG (SplitMix64) for data order and the built-in corpus. Unlike the
// std:: distributions its output is the same on every platform and standard library, so a
// seed names the same corpus and the same sample order everywhere.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace lighthouse::train {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n), n > 0 (Lemire's multiply-shift; the tiny bias is irrelevant here).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// Mixes several words into one seed (for per-document and per-epoch streams).
inline uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0) {
  SplitMix64 r(a * 0x100000001b3ULL ^ (b + 0x9e3779b97f4a7c15ULL));
  r.next();
  return r.next() ^ (c * 0xff51afd7ed558ccdULL);
}

// Fisher-Yates permutation of [0, n) from a seed.
inline std::vector<int64_t> permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  SplitMix64 r(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[r.below(static_cast<uint64_t>(i) + 1)]);
  return p;
}

}  // namespace lighthouse::train
