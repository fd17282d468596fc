// Stage 1 and the norm scorer (SPEC.md §3-§4): the launcher of the kernel templates of
// pool_score.cuh in their kept form (batches of 4 rows, the default register allocation; the
// variants timed against it: docs/cuda-notes.md), and the tail positions' level-0 norms.
#include "cuda/pool_score.cuh"

namespace lighthouse::cuda {
namespace {

constexpr int kBatch = 4;  // rows in flight per lane

// Level-0 norms of the tail positions [Nf, N) (SPEC.md §2: no pyramid entry covers them):
// one thread per (position, head), fp32 sum of squares over D.
template <typename T>
__global__ void __launch_bounds__(kThreads) tail_score_kernel(PoolScoreParams prm) {
  const Geometry& geo = prm.geo;
  const PoolPart part = part_of(prm);
  if (part.score == nullptr) return;
  const int64_t b = blockIdx.z, D = prm.D;
  for (int64_t i = global_thread(); i < geo.tail * part.Hx; i += grid_threads()) {
    const int64_t t = geo.Nf + i / part.Hx, h = i % part.Hx;
    const T* row = static_cast<const T*>(part.x) + ((b * geo.N + t) * part.Hx + h) * D;
    float ss = 0.0f;
    for (int64_t d = 0; d < D; d += kPack) {
      float v[kPack];
      load_pack(row + d, v);
#pragma unroll
      for (int k = 0; k < kPack; ++k) ss = fmaf(v[k], v[k], ss);
    }
    part.score[(b * part.Hx + h) * geo.P + t] = sqrtf(ss);
  }
}

}  // namespace

cudaError_t launch_pool_score(const PoolScoreParams& prm, cudaStream_t stream) {
  if (prm.D % kPack != 0 || prm.D > kMaxDim || prm.geo.L < 2 || prm.parts < 1 ||
      prm.parts > kMaxPoolParts)
    return cudaErrorInvalidValue;
  bool scores = false;
  for (int i = 0; i < prm.parts; ++i) scores = scores || prm.part[i].score != nullptr;
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    using T = decltype(tag);
    cudaError_t err = launch_pool_score_body(pool_score_kernel<T, kBatch, 0>, prm, stream);
    if (err != cudaSuccess || !scores || prm.geo.tail == 0) return err;
    const dim3 tail_grid(grid_for(prm.geo.tail * max_part_heads(prm)),
                         static_cast<unsigned>(prm.parts), static_cast<unsigned>(prm.B));
    tail_score_kernel<T><<<tail_grid, kThreads, 0, stream>>>(prm);
    return launched();
  });
}

}  // namespace lighthouse::cuda
