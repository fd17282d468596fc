// A naive oracle of SPEC.md, written separately from src/cpu: pyramid means by reshape+mean,
// norm scores max-pooled straight from level 0, the cascade by full sorts, slot order by
// sorting the §5 keys (not a tree walk), an explicit S x S masked softmax and per-position
// scatter sums enumerated from the §6 ranges. The forward is made of plain differentiable
// torch ops in float64, so torch autograd gives the oracle's gradients.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace lighthouse::oracle {

// Level arithmetic of a pyramid over N base positions (L levels, factor p). Any N: levels
// >= 1 cover the prefix Nf of whole coarsest windows, the rest is level 0 only.
struct Levels {
  int64_t N, L, p, Nf;
  std::vector<int64_t> off;  // [L + 1] off(l) = sum_{j<l} len(j)
  std::vector<int64_t> w;    // [L] window p^l

  Levels(int64_t n, int64_t levels, int64_t pool);
  int64_t P() const { return off[L]; }
  int64_t len(int64_t l) const { return l == 0 ? N : Nf / w[l]; }
  int64_t level(int64_t e) const;  // level of pyramid index e
  int64_t local(int64_t e) const { return e - off[level(e)]; }
};

// SPEC.md §5 sort key of entry (l, i).
double key(int64_t l, int64_t i, int64_t p, bool selected);

// Norm scores [B, Hx, P] float32 of x [B, N, Hx, D]: level-0 norms in x's compute dtype
// (float64 stays float64, others float32), rounded to float32; level l >= 1 is the max over
// its window of the level-0 scores (NaN if any is NaN).
at::Tensor scores(const at::Tensor& x, int64_t L, int64_t p);

struct Selection {
  at::Tensor slots;    // [B, H, S] int64 pyramid indices in slot order
  at::Tensor inverse;  // [B, H, P] int64 slot of each pyramid index or -1
};

// The stratified cascade of SPEC.md §4 (causal: the rule of SPEC.md §12) per (batch, query
// head, tile) from scores sq [B, H, P] and sk [B, Hkv, P], slots ordered by the §5 keys.
Selection select(const at::Tensor& sq, const at::Tensor& sk, int64_t L, int64_t p, int64_t k,
                 int64_t m, bool causal = false);
Selection plan(const at::Tensor& q, const at::Tensor& k, int64_t L, int64_t p, int64_t topk,
               int64_t m, bool causal = false);

// Pyramid [B, P, Hx, D] of x [B, N, Hx, D]: level 0 is x, level l the window means.
at::Tensor pyramid(const at::Tensor& x, int64_t L, int64_t p);

// Lighthouse attention for a fixed slot table, float64 q [B, N, H, D], k/v [B, N, Hkv, D];
// differentiable in q, k, v through index_select / matmul / softmax / index_add.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& slots, int64_t L, int64_t p);

}  // namespace lighthouse::oracle
