// Stage 1 and the norm scorer (SPEC.md §3-§4) in one pass over x: a group of G lanes (one pack
// of 8 elements each) walks one coarsest window of one head, summing every level's window in
// fp32 registers (a compile-time recursion over the levels) and writing each level >= 1 entry
// as it completes: pyramid means in x's dtype and the fp32 scores (level-0 norms reduced over
// the lanes with shuffles, coarser levels their window maxima, NaN winning as in the CPU).
#include <cmath>

#include "cuda/common.cuh"

namespace lighthouse::cuda {
namespace {

__device__ __forceinline__ float nan_max(float a, float b) {
  if (isnan(a)) return a;
  if (isnan(b)) return b;
  return fmaxf(a, b);
}

template <typename T>
struct PoolCtx {
  const T* x;       // [B, N, Hx, D], at (b, 0, h, lane pack)
  T* pyr;           // [B, P1, Hx, D], at (b, 0, h, lane pack); null: no pyramid
  float* score;     // [B, Hx, P], at (b, h, 0); null: no scores
  int64_t row;      // elements between consecutive positions (Hx * D)
  int G;            // lanes per (position, head), a power of two <= 32
  int p, log2p;
  bool active;      // this lane holds a pack of a real (position, head)
  bool leader;      // lane 0 of a real (position, head): writes the scores
  const Levels* lv;
};

// Entry (l, i) is complete: write its mean and its score.
template <typename T>
__device__ __forceinline__ void write_entry(const PoolCtx<T>& c, int l, int64_t i,
                                            const float (&sum)[kPack], float mx) {
  if (c.pyr != nullptr && c.active) {
    const float inv = 1.0f / static_cast<float>(int64_t{1} << (l * c.log2p));
    float mean[kPack];
#pragma unroll
    for (int k = 0; k < kPack; ++k) mean[k] = sum[k] * inv;
    store_pack(c.pyr + (c.lv->offset[l] - c.lv->N + i) * c.row, mean);
  }
  if (c.score != nullptr && c.leader) c.score[c.lv->offset[l] + i] = mx;
}

// Adds the window of entry (LVL, i) to sum and returns its score (the max of its level-0 norms);
// writes every entry of levels 1 .. LVL-1 inside it on the way.
template <typename T, int LVL>
__device__ float pool_window(const PoolCtx<T>& c, int64_t i, float (&sum)[kPack]) {
  float mx = -INFINITY;
  if constexpr (LVL == 1) {
    constexpr int kBatch = 4;  // loads in flight per lane, kept packed until used
    for (int j0 = 0; j0 < c.p; j0 += kBatch) {
      Pack<T> raw[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u)
        if (c.active && j0 + u < c.p) raw[u] = load_raw(c.x + (i * c.p + j0 + u) * c.row);
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        if (j0 + u >= c.p) break;  // uniform across the warp
        float row[kPack] = {};
        if (c.active) unpack(raw[u], row);
        float ss = 0.0f;
#pragma unroll
        for (int k = 0; k < kPack; ++k) {
          sum[k] += row[k];
          ss = fmaf(row[k], row[k], ss);
        }
        if (c.score != nullptr) {
          for (int off = c.G / 2; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
          const float norm = sqrtf(ss);
          if (c.leader) c.score[i * c.p + j0 + u] = norm;
          mx = nan_max(mx, norm);
        }
      }
    }
  } else {
#pragma unroll 1
    for (int j = 0; j < c.p; ++j) {
      float child[kPack] = {};
      const float cm = pool_window<T, LVL - 1>(c, i * c.p + j, child);
      write_entry(c, LVL - 1, i * c.p + j, child, cm);
#pragma unroll
      for (int k = 0; k < kPack; ++k) sum[k] += child[k];
      mx = nan_max(mx, cm);
    }
  }
  return mx;
}

// Grid x: (coarsest window w, lane g), y: head h, z: batch b; the G lanes of a (w, h) share
// a warp, and whole warps run the loop together (the shuffles need every lane).
template <typename T, int C>
__global__ void __launch_bounds__(kThreads) pool_score_kernel(PoolScoreParams prm, int log2G) {
  const Levels& lv = prm.lv;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const int64_t Nw = lv.N >> (C * lv.log2p);  // coarsest windows
  const int64_t total = Nw << log2G;
  const int64_t rounded = (total + 31) / 32 * 32;
  PoolCtx<T> c;
  c.row = prm.Hx * prm.D;
  c.G = 1 << log2G;
  c.p = 1 << lv.log2p;
  c.log2p = lv.log2p;
  c.lv = &lv;
  for (int64_t idx = global_thread(); idx < rounded; idx += grid_threads()) {
    const bool valid = idx < total;
    const int64_t w = valid ? idx >> log2G : 0;
    const int g = static_cast<int>(idx & (c.G - 1));
    const int64_t lane_off = h * prm.D + g * kPack;
    c.x = static_cast<const T*>(prm.x) + b * lv.N * c.row + lane_off;
    c.pyr = prm.pyramid == nullptr
                ? nullptr
                : static_cast<T*>(prm.pyramid) + b * (lv.P - lv.N) * c.row + lane_off;
    c.score = prm.score == nullptr ? nullptr : prm.score + (b * prm.Hx + h) * lv.P;
    c.active = valid && g < prm.D / kPack;
    c.leader = valid && g == 0;
    float sum[kPack] = {};
    const float mx = pool_window<T, C>(c, w, sum);
    write_entry(c, C, w, sum, mx);
  }
}

template <typename T, int C>
cudaError_t launch_levels(const PoolScoreParams& prm, int log2G, cudaStream_t stream) {
  if constexpr (C < kMaxPoolLevels) {
    if (prm.lv.L - 1 != C) return launch_levels<T, C + 1>(prm, log2G, stream);
    const int64_t Nw = prm.lv.N >> (C * prm.lv.log2p);
    const dim3 grid(grid_for(Nw << log2G), static_cast<unsigned>(prm.Hx),
                    static_cast<unsigned>(prm.B));
    pool_score_kernel<T, C><<<grid, kThreads, 0, stream>>>(prm, log2G);
    return launched();
  } else {
    return cudaErrorInvalidValue;  // L > kMaxPoolLevels: rejected by the ops layer
  }
}

}  // namespace

cudaError_t launch_pool_score(const PoolScoreParams& prm, cudaStream_t stream) {
  if (prm.D % kPack != 0 || prm.D > kMaxDim || prm.lv.L < 2) return cudaErrorInvalidValue;
  int log2G = 0;
  while ((1 << log2G) < prm.D / kPack) ++log2G;
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    return launch_levels<decltype(tag), 1>(prm, log2G, stream);
  });
}

}  // namespace lighthouse::cuda
