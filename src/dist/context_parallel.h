// Context-parallel Lighthouse attention (SPEC.md §10): the sequence sharded over a CP group in
// the layout of cp_layout.h; each chunk pools, scores and selects on its own with budget
// k / (2W) (the causal rule with the previous chunk's last scores, a point-to-point halo); the
// sub-sequences of all chunks in global chunk order run as one causal sequence
// through ring attention; each chunk scatters back locally, and the entries whose scatter
// range crosses into the next chunk (the last entry of each level) are passed on to it.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "dist/group.h"
#include "lighthouse/lighthouse.h"

namespace lighthouse::dist {

// Empty when cfg can run context parallel over W ranks at global sequence length N, else the
// error naming the parameter: the norm scorer (either selection rule), topk / tile_topk tiles a
// multiple of 2W (chunk boundaries on tile boundaries), and N valid for cfg with whole, equal
// tiles (SPEC.md §2).
std::string check_context_parallel(const Config& cfg, int64_t N, int W);

// The configuration of one chunk's plan: cfg with topk / (2W).
Config chunk_config(const Config& cfg, int W);

// The pyramid indices of a chunk's plan `slots` [B, H, Sc] (chunk `chunk` of length n) in the
// numbering of the whole sequence of 2W chunks (SPEC.md §4: off(l) + i at N = 2W n).
at::Tensor global_slots(const at::Tensor& slots, int64_t chunk, int64_t n, int W,
                        const Config& cfg);

// Lighthouse attention over the CP group g: q [B, 2n, H, D], k, v [B, 2n, Hkv, D] are this
// rank's two chunks (cp_shard of the full sequence). Returns [B, 2n, H, D], this rank's part of
// lighthouse::attention on the full sequence under the per-chunk plans. Differentiable in q, k,
// v; collective over g. When `plans` is given it receives the plans of the two chunks stacked
// along the batch ([2B, H, Sc], head chunk first, chunk-local indices); when `fan_in` is given
// it receives the number of contributions summed at every position and head, [B, 2n, H]
// (float, 0..L: the mean-combine layer's divisor, docs/SPEC.md §9).
at::Tensor cp_attention(Group& g, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const Config& cfg, Plan* plans = nullptr, at::Tensor* fan_in = nullptr);

}  // namespace lighthouse::dist
