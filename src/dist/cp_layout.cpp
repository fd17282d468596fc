// The context-parallel layout (cp_layout.h).
#include "dist/cp_layout.h"

namespace lighthouse::dist {

at::Tensor cp_shard(const at::Tensor& x, int64_t dim, int rank, int W) {
  const int64_t N = x.size(dim);
  TORCH_CHECK_VALUE(N % (2 * W) == 0, "cp_shard: the sequence length ", N,
                    " must be a multiple of 2 x the context-parallel degree (", 2 * W, ")");
  const int64_t n = N / (2 * W);
  return at::cat({x.narrow(dim, cp_chunk(rank, W, 0) * n, n),
                  x.narrow(dim, cp_chunk(rank, W, 1) * n, n)},
                 dim);
}

at::Tensor cp_unshard(const std::vector<at::Tensor>& parts, int64_t dim) {
  const int W = static_cast<int>(parts.size());
  TORCH_CHECK_VALUE(W > 0, "cp_unshard: no parts");
  const int64_t n = parts[0].size(dim) / 2;
  std::vector<at::Tensor> chunks(static_cast<size_t>(2 * W));
  for (int r = 0; r < W; ++r)
    for (int half = 0; half < 2; ++half)
      chunks[static_cast<size_t>(cp_chunk(r, W, half))] = parts[r].narrow(dim, half * n, n);
  return at::cat(chunks, dim);
}

at::Tensor cp_positions(int64_t n, int rank, int W, const torch::Device& device) {
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  return at::cat({at::arange(cp_chunk(rank, W, 0) * n, (cp_chunk(rank, W, 0) + 1) * n, opts),
                  at::arange(cp_chunk(rank, W, 1) * n, (cp_chunk(rank, W, 1) + 1) * n, opts)});
}

}  // namespace lighthouse::dist
