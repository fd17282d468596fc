// The plan geometry of SPEC.md §2 and §4-§6 for one sequence length N: level sizes and
// offsets, tiles, slot counts, and the per-entry arithmetic (level of a pyramid index, the
// scatter range R, the entry whose range holds a position, a tile's budgets). Header-only,
// fixed-size arrays, every helper __host__ __device__: the CPU reference, the CUDA kernels
// (which take it by value in their params) and the ops layer share this one definition.
// Torch-free and string-free; validation with messages lives in config.h (make_geometry).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LIGHTHOUSE_HD __host__ __device__ __forceinline__
#else
#define LIGHTHOUSE_HD inline
#endif

namespace lighthouse {

constexpr int kMaxLevels = 16;  // validate() accepts L <= 16

// Any N (SPEC.md §2): the pyramid covers the prefix Nf = Nc p^c of whole coarsest windows;
// the tail N - Nf (< p^c) is level-0 only, every tail token emitted after the tiles.
struct Geometry {
  int64_t N = 0;       // base sequence length
  int64_t L = 0;       // levels
  int64_t p = 0;       // pooling factor
  int64_t log2p = 0;   // p = 2^log2p
  int64_t k = 0;       // per-level budget
  int64_t m = 0;       // per-tile budget
  int64_t T = 0;       // tile budget count k / m: the most tiles a sequence has
  int64_t c = 0;       // coarsest level L - 1
  int64_t Nc = 0;      // coarsest entries floor(N / p^c)
  int64_t Nf = 0;      // base positions under the pyramid Nc p^c
  int64_t tail = 0;    // N - Nf, emitted as level-0 tokens only
  int64_t C = 0;       // coarsest entries of every tile but the last: ceil(Nc / T)
  int64_t tiles = 0;   // ceil(Nc / C) <= T (0 when Nc = 0)
  int64_t C_last = 0;  // coarsest entries of the last tile: Nc - (tiles - 1) C, in [1, C]
  int64_t S_tile = 0;  // slots of a tile of C coarsest entries (tile_slots(C))
  int64_t S = 0;       // slots per head: (tiles - 1) S_tile + tile_slots(C_last) + tail
  int64_t P = 0;       // pyramid entries per head, all levels: N + sum_{l>=1} Nf / p^l
  int64_t P1 = 0;      // pyramid entries of levels >= 1: P - N
  int64_t level_len[kMaxLevels] = {};         // N at level 0, Nf / p^l above
  int64_t level_offset[kMaxLevels + 1] = {};  // off(l) = sum_{j<l} level_len[j], off(L) = P
  int64_t window[kMaxLevels] = {};            // p^l
};

// Base positions R(l, i) that pyramid entry (l, i) scatters to (SPEC.md §6), clipped to N:
// [first, last] inclusive, empty when first > last.
struct Range {
  int64_t first;
  int64_t last;
};

// Level geometry only (levels, windows, level sizes and offsets, Nc, Nf, tail, P, P1) for L
// levels of factor p over N base positions; the tile fields stay zero. The caller has
// validated 2 <= L <= kMaxLevels, p a power of two, N > 0 and p^(L-1) without overflow.
LIGHTHOUSE_HD Geometry level_geometry(int64_t L, int64_t p, int64_t N) {
  Geometry g;
  g.N = N;
  g.L = L;
  g.p = p;
  while ((int64_t{1} << g.log2p) < p) ++g.log2p;
  g.c = L - 1;
  g.window[0] = 1;
  for (int64_t l = 1; l < L; ++l) g.window[l] = g.window[l - 1] * p;
  g.Nc = N / g.window[g.c];
  g.Nf = g.Nc * g.window[g.c];
  g.tail = N - g.Nf;
  for (int64_t l = 0; l < L; ++l) {
    g.level_len[l] = l == 0 ? N : g.Nf / g.window[l];
    g.level_offset[l + 1] = g.level_offset[l] + g.level_len[l];
  }
  g.P = g.level_offset[L];
  g.P1 = g.P - N;
  return g;
}

// Entries selected at a level with n candidates: all of them when n <= m, else m.
LIGHTHOUSE_HD int64_t level_budget(const Geometry& g, int64_t n) { return n < g.m ? n : g.m; }

// Slots a tile of n_c coarsest entries emits (SPEC.md §4): n_c + p * sum_{l=c..1} b_l with
// b_c = min(m, n_c), b_{l-1} = min(m, p b_l); C + (L-1) m p when n_c >= m.
LIGHTHOUSE_HD int64_t tile_slots(const Geometry& g, int64_t n_c) {
  int64_t total = n_c, n = n_c;
  for (int64_t l = g.c; l >= 1; --l) {
    n = g.p * level_budget(g, n);  // candidates of level l - 1
    total += n;
  }
  return total;
}

// Tiles of the budgets k = T m over Nc coarsest entries (SPEC.md §4); fills C, tiles,
// C_last, S_tile and S. Needs the level fields (level_geometry) and k, m, T.
LIGHTHOUSE_HD void tile_geometry(Geometry& g) {
  g.C = (g.Nc + g.T - 1) / g.T;
  g.tiles = g.C == 0 ? 0 : (g.Nc + g.C - 1) / g.C;
  g.C_last = g.tiles == 0 ? 0 : g.Nc - (g.tiles - 1) * g.C;
  g.S_tile = tile_slots(g, g.C);
  g.S = g.tiles == 0 ? g.tail : (g.tiles - 1) * g.S_tile + tile_slots(g, g.C_last) + g.tail;
}

// Coarsest entries of tile j.
LIGHTHOUSE_HD int64_t tile_entries(const Geometry& g, int64_t j) {
  return j + 1 == g.tiles ? g.C_last : g.C;
}

// Level-local index of the entry of level l whose window W holds position t (SPEC.md §7's
// gradient path: floor(t / p^l)), or -1 past the pyramid (a tail position, l >= 1).
LIGHTHOUSE_HD int64_t window_entry(const Geometry& g, int64_t l, int64_t t) {
  const int64_t i = t / g.window[l];
  return i < g.level_len[l] ? i : -1;
}

// Level of pyramid index e (off(l) <= e < off(l+1)); -1 outside [0, P).
LIGHTHOUSE_HD int64_t level_of(const Geometry& g, int64_t e) {
  if (e < 0) return -1;
  for (int64_t l = 0; l < g.L; ++l)
    if (e < g.level_offset[l + 1]) return l;
  return -1;
}

LIGHTHOUSE_HD Range scatter_range(const Geometry& g, int64_t level, int64_t i) {
  const int64_t w = g.window[level];
  Range r{(i + 1) * w - 1, (i + 2) * w - 2};
  if (r.last > g.N - 1) r.last = g.N - 1;
  return r;
}

// Level-local index of the entry of level l whose range R holds position t (SPEC.md §6:
// i = floor((t + 1) / p^l) - 1), or -1 when there is none (before the first window, or past
// the pyramid at a ragged end).
LIGHTHOUSE_HD int64_t scatter_entry(const Geometry& g, int64_t l, int64_t t) {
  const int64_t i = (t + 1) / g.window[l] - 1;
  return i < g.level_len[l] ? i : -1;
}

}  // namespace lighthouse
