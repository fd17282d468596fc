// A seeded mutator for the readers' fuzz pass (test_fuzz.cpp): stacks 1-4 byte-level edits
// (bit flips, interesting bytes and little-endian integers, truncation, deletion, duplication,
// random tails) and, for text formats, token edits (numbers replaced by extreme literals, JSON /
// TOML punctuation inserted). Deterministic for a seed, so a failure reproduces.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace lighthouse::fuzz {

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  std::string mutate(std::string s, bool text) {
    const int edits = 1 + static_cast<int>(below(4));
    for (int i = 0; i < edits; ++i) text && below(2) ? edit_text(s) : edit_bytes(s);
    return s;
  }

 private:
  void edit_bytes(std::string& s) {
    static const uint64_t kInts[] = {0,
                                     1,
                                     0x7f,
                                     0x80,
                                     0xff,
                                     0xffff,
                                     0x7fffffff,
                                     0x80000000,
                                     0xffffffff,
                                     uint64_t{1} << 32,
                                     uint64_t{1} << 40,
                                     (uint64_t{1} << 62) + 5000,
                                     uint64_t{1} << 63,
                                     ~uint64_t{0},
                                     ~uint64_t{0} - 7,
                                     0x7fffffffffffffff};
    const size_t n = s.size();
    switch (below(8)) {
      case 0:  // one bit
        if (n) s[below(n)] ^= static_cast<char>(1 << below(8));
        break;
      case 1:  // an interesting byte
        if (n) s[below(n)] = static_cast<char>(kInts[below(5)]);
        break;
      case 2:  // an interesting 4- or 8-byte integer, often at an aligned offset
        if (n >= 8) {
          const size_t w = below(2) ? 8 : 4;
          size_t at = below(n - w + 1);
          if (below(2)) at &= ~size_t{7};
          const uint64_t v = kInts[below(sizeof(kInts) / sizeof(kInts[0]))];
          std::memcpy(&s[at], &v, w);
        }
        break;
      case 3:  // truncated
        s.resize(below(n + 1));
        break;
      case 4:  // a range deleted
        if (n) {
          const size_t at = below(n), len = 1 + below(std::min<size_t>(n - at, 64));
          s.erase(at, len);
        }
        break;
      case 5:  // a range duplicated
        if (n) {
          const size_t at = below(n), len = 1 + below(std::min<size_t>(n - at, 64));
          s.insert(below(n + 1), s.substr(at, len));
        }
        break;
      case 6:  // random bytes appended
        for (uint64_t i = 0, k = 1 + below(32); i < k; ++i) s.push_back(static_cast<char>(rng_()));
        break;
      default:  // a random byte
        if (n) s[below(n)] = static_cast<char>(rng_());
        break;
    }
  }

  void edit_text(std::string& s) {
    static const char* kTokens[] = {"-1",   "0",     "9223372036854775807", "-9223372036854775808",
                                    "1e999", "nan",  "2.5",  "18446744073709551616",
                                    "\"\"",  "null", "true", "[]", "{}", "[1, 2]", "\"yarn\"",
                                    "\"\\ud800\"", "inf", "\"../../x\"", "[", "{", "\"", "=",
                                    "]]", "\n[run]\n", "\n[model]\nd_model = 0\n", "'''", "#"};
    const size_t n = s.size();
    const std::string tok = kTokens[below(sizeof(kTokens) / sizeof(kTokens[0]))];
    if (below(2)) {  // a number (a run of digits) replaced by the token
      std::vector<size_t> starts;
      for (size_t i = 0; i < n; ++i)
        if (std::isdigit(static_cast<unsigned char>(s[i])) &&
            (i == 0 || !std::isdigit(static_cast<unsigned char>(s[i - 1]))))
          starts.push_back(i);
      if (!starts.empty()) {
        const size_t at = starts[below(starts.size())];
        size_t end = at;
        while (end < n && (std::isdigit(static_cast<unsigned char>(s[end])) || s[end] == '.'))
          ++end;
        s.replace(at, end - at, tok);
        return;
      }
    }
    s.insert(below(n + 1), tok);
  }

  std::mt19937_64 rng_;
};

}  // namespace lighthouse::fuzz
