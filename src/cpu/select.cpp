// CPU reference for stage 2: the per-tile stratified cascade (SPEC.md §4) and the
// post-order slot table with its inverse (SPEC.md §5).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/reference.h"

namespace lighthouse::cpu {
namespace {

// Selection order: larger score first, NaN counts as larger than any number, ties go to the
// smaller index. This total order is shared with the CUDA kernel.
inline bool ranks_before(float a, int64_t ia, float b, int64_t ib) {
  const bool na = std::isnan(a), nb = std::isnan(b);
  if (na != nb) return na;
  if (!na && a != b) return a > b;
  return ia < ib;
}

struct TileSelector {
  const Geometry& g;
  const float* sq;       // [P] scores of this query head
  const float* sk;       // [P] scores of its KV head
  int64_t tile;
  std::vector<std::vector<char>> selected;  // [L][tile entries at level l]
  std::vector<int64_t> start;               // [L] first level-local index of the tile

  TileSelector(const Geometry& geom, const float* q, const float* k, int64_t j)
      : g(geom), sq(q), sk(k), tile(j), selected(geom.L), start(geom.L) {
    for (int64_t l = 0; l < g.L; ++l) {
      const int64_t per_tile = g.C * (g.window[g.c] / g.window[l]);
      start[l] = j * per_tile;
      selected[l].assign(per_tile, 0);
    }
  }

  void cascade() {
    std::vector<int64_t> cand(g.C);
    for (int64_t i = 0; i < g.C; ++i) cand[i] = start[g.c] + i;
    const size_t half = static_cast<size_t>(g.m / 2);
    for (int64_t l = g.c; l >= 1; --l) {
      const float* q = sq + g.level_offset[l];
      const float* k = sk + g.level_offset[l];
      std::partial_sort(cand.begin(), cand.begin() + half, cand.end(),
                        [&](int64_t a, int64_t b) { return ranks_before(q[a], a, q[b], b); });
      std::partial_sort(cand.begin() + half, cand.begin() + 2 * half, cand.end(),
                        [&](int64_t a, int64_t b) { return ranks_before(k[a], a, k[b], b); });
      std::vector<int64_t> sel(cand.begin(), cand.begin() + 2 * half);
      std::sort(sel.begin(), sel.end());
      cand.clear();
      for (int64_t i : sel) {
        selected[l][i - start[l]] = 1;
        for (int64_t ch = 0; ch < g.p; ++ch) cand.push_back(i * g.p + ch);
      }
    }
  }

  // Post-order walk: the children of a selected entry first (in order), then the entry.
  void emit(int64_t l, int64_t i, int64_t* slots, int64_t* inverse, int64_t* next) const {
    if (l > 0 && selected[l][i - start[l]])
      for (int64_t ch = 0; ch < g.p; ++ch) emit(l - 1, i * g.p + ch, slots, inverse, next);
    const int64_t e = g.level_offset[l] + i;
    slots[*next] = e;
    inverse[e] = *next;
    ++*next;
  }
};

}  // namespace

std::tuple<at::Tensor, at::Tensor> select(const at::Tensor& sq, const at::Tensor& sk,
                                          const Geometry& g) {
  const int64_t B = sq.size(0), H = sq.size(1), Hkv = sk.size(1);
  const int64_t group = H / Hkv;
  auto opts = sq.options().dtype(at::kLong);
  at::Tensor slots = at::empty({B, H, g.S}, opts);        // [B, H, S]
  at::Tensor inverse = at::full({B, H, g.P}, -1, opts);   // [B, H, P]
  const float* q = sq.data_ptr<float>();
  const float* k = sk.data_ptr<float>();
  int64_t* sl = slots.data_ptr<int64_t>();
  int64_t* inv = inverse.data_ptr<int64_t>();
  at::parallel_for(0, B * H * g.T, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      const int64_t bh = w / g.T, j = w % g.T, b = bh / H, h = bh % H;
      TileSelector tile(g, q + bh * g.P, k + (b * Hkv + h / group) * g.P, j);
      tile.cascade();
      int64_t next = j * g.S_tile;
      for (int64_t i = 0; i < g.C; ++i)
        tile.emit(g.c, tile.start[g.c] + i, sl + bh * g.S, inv + bh * g.P, &next);
      TORCH_INTERNAL_ASSERT(next == (j + 1) * g.S_tile, "tile emitted ", next - j * g.S_tile,
                            " slots, expected ", g.S_tile);
    }
  });
  return {slots, inverse};
}

}  // namespace lighthouse::cpu
