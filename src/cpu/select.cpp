// CPU reference for stage 2: the per-tile stratified cascade (SPEC.md §4) or the causal one
// (SPEC.md §12), and the post-order slot table with its inverse (SPEC.md §5), the tail's
// level-0 tokens last (SPEC.md §2).
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

// Causal score of entry (l, i) (SPEC.md §12): the max of the previous window's pooled score
// and the score of the entry's first base position (NaN if either is NaN). The window before
// entry 0 is the halo's (prev [L-1], SPEC.md §10), or none when prev is null.
inline float causal_score(const float* s, const float* prev_s, const Geometry& g, int64_t l,
                          int64_t i) {
  const float first = s[i * g.window[l]];
  if (i == 0 && !prev_s) return first;
  const float prev = i == 0 ? prev_s[l - 1] : s[g.level_offset[l] + i - 1];
  if (std::isnan(first) || std::isnan(prev)) return std::nanf("");
  return prev > first ? prev : first;
}

// A candidate's causal score beats the mean of the r candidates before it (exact compare:
// the float64 product of a float and r < 2^31 is exact). NaN beats everything.
inline bool causal_beats(float a, int64_t r, double sum) {
  return std::isnan(a) || static_cast<double>(a) * static_cast<double>(r) > sum;
}

struct TileSelector {
  const Geometry& g;
  const float* sq;       // [P] scores of this query head
  const float* sk;       // [P] scores of its KV head
  const float* prev_q;   // [L-1] halo of this query head, or null (SPEC.md §10)
  const float* prev_k;   // [L-1] halo of its KV head, or null
  int64_t tile;
  std::vector<std::vector<char>> selected;  // [L][tile entries at level l]
  std::vector<int64_t> start;               // [L] first level-local index of the tile

  int64_t entries;                          // coarsest entries of the tile

  TileSelector(const Geometry& geom, const float* q, const float* k, const float* pq,
               const float* pk, int64_t j)
      : g(geom), sq(q), sk(k), prev_q(pq), prev_k(pk), tile(j), selected(geom.L), start(geom.L),
        entries(tile_entries(geom, j)) {
    for (int64_t l = 0; l < g.L; ++l) {
      const int64_t scale = g.window[g.c] / g.window[l];
      start[l] = j * g.C * scale;
      selected[l].assign(entries * scale, 0);
    }
  }

  // Stratified (SPEC.md §4): the top m/2 by sq, then the top m/2 of the rest by sk; every
  // candidate when there are at most m.
  std::vector<int64_t> stratified(int64_t l, std::vector<int64_t> cand) const {
    if (static_cast<int64_t>(cand.size()) <= g.m) return cand;
    const size_t half = static_cast<size_t>(g.m / 2);
    const float* q = sq + g.level_offset[l];
    const float* k = sk + g.level_offset[l];
    std::partial_sort(cand.begin(), cand.begin() + half, cand.end(),
                      [&](int64_t a, int64_t b) { return ranks_before(q[a], a, q[b], b); });
    std::partial_sort(cand.begin() + half, cand.begin() + 2 * half, cand.end(),
                      [&](int64_t a, int64_t b) { return ranks_before(k[a], a, k[b], b); });
    std::vector<int64_t> sel(cand.begin(), cand.begin() + 2 * half);
    std::sort(sel.begin(), sel.end());
    return sel;
  }

  // Causal (SPEC.md §12): candidates decided in index order from their causal scores, the
  // scores of the candidates before them and the budget left (b = min(m, n)).
  std::vector<int64_t> causal(int64_t l, const std::vector<int64_t>& cand) const {
    const int64_t n = static_cast<int64_t>(cand.size()), half = g.m / 2;
    const int64_t budget = level_budget(g, n);
    int64_t taken = 0, tq = 0, tk = 0;
    double sum_q = 0.0, sum_k = 0.0;
    std::vector<int64_t> sel;
    for (int64_t r = 0; r < n; ++r) {
      const int64_t i = cand[r];
      const float a = causal_score(sq, prev_q, g, l, i), b = causal_score(sk, prev_k, g, l, i);
      bool take = false;
      if (budget - taken == n - r) {
        take = true;
      } else if (tq < half && tq * n < half * (r + 1) && causal_beats(a, r, sum_q)) {
        take = true;
        ++tq;
      } else if (tk < half && tk * n < half * (r + 1) && causal_beats(b, r, sum_k)) {
        take = true;
        ++tk;
      }
      if (take) {
        ++taken;
        sel.push_back(i);
      }
      sum_q += static_cast<double>(a);
      sum_k += static_cast<double>(b);
    }
    TORCH_INTERNAL_ASSERT(taken == budget, "causal selection took ", taken, ", expected ", budget);
    return sel;
  }

  void cascade(Selection rule) {
    std::vector<int64_t> cand(entries);
    for (int64_t i = 0; i < entries; ++i) cand[i] = start[g.c] + i;
    for (int64_t l = g.c; l >= 1; --l) {
      const std::vector<int64_t> sel =
          rule == Selection::Causal ? causal(l, cand) : stratified(l, cand);
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
                                          const Geometry& g, Selection selection,
                                          const at::Tensor& prev_sq, const at::Tensor& prev_sk) {
  const int64_t B = sq.size(0), H = sq.size(1), Hkv = sk.size(1);
  const int64_t group = H / Hkv;
  auto opts = sq.options().dtype(at::kLong);
  at::Tensor slots = at::empty({B, H, g.S}, opts);        // [B, H, S]
  at::Tensor inverse = at::full({B, H, g.P}, -1, opts);   // [B, H, P]
  const float* q = sq.data_ptr<float>();
  const float* k = sk.data_ptr<float>();
  const float* pq = prev_sq.defined() ? prev_sq.data_ptr<float>() : nullptr;  // [B, H, L-1]
  const float* pk = prev_sk.defined() ? prev_sk.data_ptr<float>() : nullptr;  // [B, Hkv, L-1]
  const int64_t L1 = g.L - 1;
  int64_t* sl = slots.data_ptr<int64_t>();
  int64_t* inv = inverse.data_ptr<int64_t>();
  at::parallel_for(0, B * H * g.tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      const int64_t bh = w / g.tiles, j = w % g.tiles, b = bh / H, h = bh % H;
      const int64_t kv = b * Hkv + h / group;
      TileSelector tile(g, q + bh * g.P, k + kv * g.P, pq ? pq + bh * L1 : nullptr,
                        pk ? pk + kv * L1 : nullptr, j);
      tile.cascade(selection);
      int64_t next = j * g.S_tile;
      for (int64_t i = 0; i < tile.entries; ++i)
        tile.emit(g.c, tile.start[g.c] + i, sl + bh * g.S, inv + bh * g.P, &next);
      const int64_t want = tile_slots(g, tile.entries);
      TORCH_INTERNAL_ASSERT(next == j * g.S_tile + want, "tile emitted ", next - j * g.S_tile,
                            " slots, expected ", want);
    }
  });
  // The tail (SPEC.md §2): its level-0 tokens close every head's slot table.
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t u = 0; u < g.tail; ++u) {
      const int64_t s = g.S - g.tail + u;
      sl[bh * g.S + s] = g.Nf + u;
      inv[bh * g.P + g.Nf + u] = s;
    }
  return {slots, inverse};
}

}  // namespace lighthouse::cpu
