// Stage 1 and the norm scorer (SPEC.md §3-§4) in one pass over x, as kernel templates: the
// launcher in pool_score.cu instantiates the kept form, bench/kernel_variants.cu others (the
// tuning harness of docs/cuda-notes.md), so a variant is a set of template arguments of this
// one body, never a copy of it.
//
// A group of G lanes (one pack of 8 elements each) walks the rows of one coarsest window of one
// head. Batched form (kWin = 0): batches of up to kBatch rows, the next batch loading while the
// current one is summed. Whole-window form (kWin > 0): up to kWin rows loaded at once, then
// summed. Level-1 sums live in registers; when a level-l window completes its sum is carried
// into level l + 1, whose running sums (levels 2..L-1, fp32, per thread) live in shared memory.
// Every level >= 1 entry is written as it completes: its mean in x's dtype and its fp32 score
// (level-0 norms reduced over the lanes with shuffles, coarser levels the maxima of their
// windows, NaN winning as in the CPU). Both forms sum the same rows in the same order, so their
// outputs are bitwise equal. The positions of a ragged tail (no coarsest window of their own)
// get their level-0 norms from a second, small kernel (pool_score.cu).
#pragma once

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
  T* pyr;         // [B, P1, Hx, D], at (b, 0, h, lane pack); null: no pyramid
  float* score;   // [B, Hx, P], at (b, h, 0); null: no scores
  int64_t row;    // elements between consecutive positions (Hx * D)
  int log2p;
  bool active;    // this lane holds a pack of a real (position, head)
  bool leader;    // lane 0 of a real (position, head): writes the scores
  const Geometry* geo;

  // Entry (l, i) is complete: write its mean and its score.
  __device__ void write(int l, int64_t i, const float (&sum)[kPack], float mx) const {
    if (pyr != nullptr && active) {
      const float inv = 1.0f / static_cast<float>(int64_t{1} << (l * log2p));
      float mean[kPack];
#pragma unroll
      for (int k = 0; k < kPack; ++k) mean[k] = sum[k] * inv;
      store_pack(pyr + (geo->level_offset[l] - geo->N + i) * row, mean);
    }
    if (score != nullptr && leader) score[geo->level_offset[l] + i] = mx;
  }
};

// The part of blockIdx.y, read with constant indices (a dynamic index into the kernel's
// parameters would copy them to local memory).
__device__ __forceinline__ PoolPart part_of(const PoolScoreParams& prm) {
  static_assert(kMaxPoolParts == 3, "part_of selects among three parts");
  return blockIdx.y == 0 ? prm.part[0] : (blockIdx.y == 1 ? prm.part[1] : prm.part[2]);
}

// Grid x: (coarsest window w, head h, lane g), heads fastest, so a block reads whole [Hx, D]
// position rows; y: the part (tensor); z: batch b. The G lanes of a (w, h) share a warp, and
// whole warps run the loop together (the shuffles need every lane).
// Shared memory: per level 2..L-1 and thread, kPack running sums and the running max.
template <typename T, int kBatch, int kWin>
__device__ __forceinline__ void pool_score_body(const PoolScoreParams& prm, int log2G) {
  static_assert(kWin == 0 || (kWin & (kWin - 1)) == 0, "kWin is 0 or a power of two");
  extern __shared__ float carry[];  // [L-2][kPack + 1][blockDim]
  const Geometry& geo = prm.geo;
  const int C = geo.L - 1, log2p = geo.log2p, p = 1 << log2p, G = 1 << log2G;
  const int nb = p < kBatch ? p : kBatch;  // rows per batch; divides p
  const int64_t b = blockIdx.z;
  const PoolPart part = part_of(prm);
  const int64_t W = int64_t{1} << (C * log2p);  // rows per coarsest window
  const int64_t total = ((geo.N >> (C * log2p)) * part.Hx) << log2G;
  const int64_t rounded = (total + 31) / 32 * 32;
  auto slot = [&](int l, int k) -> float& {
    return carry[((l - 2) * (kPack + 1) + k) * blockDim.x + threadIdx.x];
  };
  PoolCtx<T> c;
  c.row = part.Hx * prm.D;
  c.log2p = log2p;
  c.geo = &geo;
  for (int64_t idx = global_thread(); idx < rounded; idx += grid_threads()) {
    const bool valid = idx < total;
    const int64_t wh = valid ? idx >> log2G : 0;
    const int64_t w = wh / part.Hx, h = wh - w * part.Hx;
    const int g = static_cast<int>(idx & (G - 1));
    const int64_t lane_off = h * prm.D + g * kPack;
    const T* x = static_cast<const T*>(part.x) + b * geo.N * c.row + lane_off;
    c.pyr = part.pyramid == nullptr
                ? nullptr
                : static_cast<T*>(part.pyramid) + b * (geo.P - geo.N) * c.row + lane_off;
    c.score = part.score == nullptr ? nullptr : part.score + (b * part.Hx + h) * geo.P;
    c.active = valid && g < prm.D / kPack;
    c.leader = valid && g == 0;
    for (int l = 2; l <= C; ++l) {
      for (int k = 0; k < kPack; ++k) slot(l, k) = 0.0f;
      slot(l, kPack) = -INFINITY;
    }
    const int64_t t0 = w * W;
    // Row t of the window into the level-1 sum and (scores) its level-0 norm and the max mx.
    auto add_row = [&](const float (&v)[kPack], int64_t t, float(&sum)[kPack], float& mx) {
      float ss = 0.0f;
#pragma unroll
      for (int k = 0; k < kPack; ++k) {
        sum[k] += v[k];
        ss = fmaf(v[k], v[k], ss);
      }
      if (c.score != nullptr) {
        for (int off = G / 2; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
        const float norm = sqrtf(ss);
        if (c.leader) c.score[t] = norm;
        mx = nan_max(mx, norm);
      }
    };
    // The rows before `end` are summed and a level-1 window ends there: carry upwards while
    // windows complete.
    auto complete = [&](int64_t end, float(&sum)[kPack], float& mx) {
      c.write(1, (end >> log2p) - 1, sum, mx);
      for (int l = 2; l <= C; ++l) {
        const bool done = (end & ((int64_t{1} << (l * log2p)) - 1)) == 0;
#pragma unroll
        for (int k = 0; k < kPack; ++k) {
          const float s = slot(l, k) + sum[k];
          sum[k] = s;
          slot(l, k) = done ? 0.0f : s;
        }
        const float m = nan_max(slot(l, kPack), mx);
        mx = m;
        slot(l, kPack) = done ? -INFINITY : m;
        if (!done) break;
        c.write(l, (end >> (l * log2p)) - 1, sum, mx);
      }
#pragma unroll
      for (int k = 0; k < kPack; ++k) sum[k] = 0.0f;
      mx = -INFINITY;
    };
    if constexpr (kWin == 0) {
      Pack<T> next[kBatch];
      auto load_batch = [&](int64_t t) {
#pragma unroll
        for (int u = 0; u < kBatch; ++u)
          if (c.active && u < nb) next[u] = load_raw(x + (t + u) * c.row);
      };
      load_batch(t0);
      float sum[kPack] = {};
      float mx = -INFINITY;
      for (int64_t r = 0; r < W; r += nb) {
        Pack<T> cur[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) cur[u] = next[u];
        if (r + nb < W) load_batch(t0 + r + nb);
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          if (u >= nb) break;  // uniform across the warp
          float v[kPack] = {};
          if (c.active) unpack(cur[u], v);
          add_row(v, t0 + r + u, sum, mx);
        }
        const int64_t end = t0 + r + nb;  // rows done so far
        // Mid-window batch (p > kBatch): nothing completes. A `continue` here, the loop's last
        // statement otherwise, keeps the carry below out of the batch's path.
        if ((end & (p - 1)) != 0) continue;
        complete(end, sum, mx);
      }
    } else {
      const int64_t chunk = W < kWin ? W : kWin;  // rows loaded at once; divides W
      float sum[kPack] = {};
      float mx = -INFINITY;
      for (int64_t r = 0; r < W; r += chunk) {
        Pack<T> rows[kWin];
#pragma unroll
        for (int u = 0; u < kWin; ++u)
          if (c.active && u < chunk) rows[u] = load_raw(x + (t0 + r + u) * c.row);
#pragma unroll
        for (int u = 0; u < kWin; ++u) {
          if (u >= chunk) break;  // uniform across the warp
          float v[kPack] = {};
          if (c.active) unpack(rows[u], v);
          add_row(v, t0 + r + u, sum, mx);
          const int64_t end = t0 + r + u + 1;
          if ((end & (p - 1)) == 0) complete(end, sum, mx);
        }
      }
    }
  }
}

// The kernel at the default register allocation, and the one that asks for kMinBlocks blocks
// per SM (ptxas caps the registers to fit them; __launch_bounds__(kThreads, 1) is not the
// default allocation, so the two stay separate templates).
template <typename T, int kBatch, int kWin>
__global__ void __launch_bounds__(kThreads) pool_score_kernel(PoolScoreParams prm, int log2G) {
  pool_score_body<T, kBatch, kWin>(prm, log2G);
}
template <typename T, int kBatch, int kWin, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    pool_score_kernel_min(PoolScoreParams prm, int log2G) {
  pool_score_body<T, kBatch, kWin>(prm, log2G);
}

using PoolScoreKernel = void (*)(PoolScoreParams, int);

// The parts' largest head count: it sizes the grids (a part with fewer heads idles the rest).
inline int64_t max_part_heads(const PoolScoreParams& prm) {
  int64_t Hx = 0;
  for (int i = 0; i < prm.parts; ++i) Hx = prm.part[i].Hx > Hx ? prm.part[i].Hx : Hx;
  return Hx;
}

// Launches one instantiation of the body over every coarsest window of prm (no tail).
inline cudaError_t launch_pool_score_body(PoolScoreKernel kernel, const PoolScoreParams& prm,
                                          cudaStream_t stream) {
  int log2G = 0;
  while ((1 << log2G) < prm.D / kPack) ++log2G;
  const int C = prm.geo.L - 1;
  const size_t smem = static_cast<size_t>(C - 1) * (kPack + 1) * kThreads * sizeof(float);
  const int64_t Nw = prm.geo.N >> (C * prm.geo.log2p);
  const dim3 grid(grid_for((Nw * max_part_heads(prm)) << log2G), static_cast<unsigned>(prm.parts),
                  static_cast<unsigned>(prm.B));
  if (smem > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (err != cudaSuccess) return err;
  }
  kernel<<<grid, kThreads, smem, stream>>>(prm, log2G);
  return launched();
}

}  // namespace
}  // namespace lighthouse::cuda
