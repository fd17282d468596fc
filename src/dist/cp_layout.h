// The context-parallel layout (SPEC.md §10): a sequence cut into 2W equal chunks, rank r of a
// CP group of W holding chunk r then chunk 2W-1-r (causal load balancing: every rank gets one
// early and one late chunk), concatenated along the sequence dimension.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace lighthouse::dist {

// The global chunk index of half `half` (0: head chunk, 1: tail chunk) of rank `rank` of `W`.
inline int64_t cp_chunk(int rank, int W, int half) { return half == 0 ? rank : 2 * W - 1 - rank; }

// Rank `rank`'s part of x along `dim` (x.size(dim) must be a multiple of 2W): its two chunks,
// concatenated. A copy.
at::Tensor cp_shard(const at::Tensor& x, int64_t dim, int rank, int W);

// The inverse: every rank's part (index = rank) back in global order along `dim`.
at::Tensor cp_unshard(const std::vector<at::Tensor>& parts, int64_t dim);

// Global positions [2n] int64 of rank `rank`'s local positions, n = chunk length.
at::Tensor cp_positions(int64_t n, int rank, int W, const torch::Device& device);

}  // namespace lighthouse::dist
