// The data-movement stages (SPEC.md §5-§7) as kernel templates: the launchers in
// gather_scatter.cu instantiate the shipped forms, bench/*_variants.cu others (the tuning
// harness of docs/cuda-notes.md). Each is a pure gather (every output element is one
// fixed-order fp32 sum, so no atomics and bitwise-deterministic results):
//   gather           slot s of head h <- its pyramid entry (level 0 straight from x)
//   scatter          position t <- sum over levels of the slot whose range R holds t
//   scatter_backward slot s <- sum of grad over the positions of its range R
//   gather_backward  token t of KV head hx <- sum over the group's query heads and the levels of
//                    the slot whose window holds t, times 1/p^l (q, k and v in one launch)
// Grids: x walks positions or slots (grid-stride, so any N and S), y the heads, z the batch;
// the two kernels that write [B, N, H, D] rows walk (positions, heads) in x, heads fastest.
// A (position or slot) owns G = next_pow2(D / 8) consecutive lanes of one pack each, so lane
// and row come from shifts, and every row is read or written as whole 16-byte vectors.
// Indices outside the plan (a malformed user plan) read as "not emitted" and never touch memory.
#pragma once

#include "cuda/common.cuh"

namespace lighthouse::cuda {
namespace {

struct Lanes {
  int log2G;     // lanes per row = 2^log2G >= D / 8
  int64_t packs; // D / 8 lanes carry data

  __device__ int64_t row(int64_t i) const { return i >> log2G; }
  __device__ int lane(int64_t i) const { return static_cast<int>(i & ((int64_t{1} << log2G) - 1)); }
};

inline Lanes lanes_for(int64_t D) {
  Lanes ln{0, D / kPack};
  while ((int64_t{1} << ln.log2G) < ln.packs) ++ln.log2G;
  return ln;
}

inline dim3 grid3(int64_t rows, const Lanes& ln, int64_t heads, int64_t batch) {
  return dim3(grid_for(rows << ln.log2G), static_cast<unsigned>(heads),
              static_cast<unsigned>(batch));
}

__device__ __forceinline__ void zero(float (&a)[kPack]) {
#pragma unroll
  for (int k = 0; k < kPack; ++k) a[k] = 0.0f;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) gather_kernel(GatherParams prm, Lanes ln) {
  const Geometry& geo = prm.geo;
  const int64_t b = blockIdx.z, h = blockIdx.y, D = prm.D;
  const int64_t hx = h / (prm.H / prm.Hx), row = prm.Hx * D;
  const T* x = static_cast<const T*>(prm.x) + b * geo.N * row + hx * D;          // [N, ., D]
  const T* pyr = static_cast<const T*>(prm.pyramid) + b * (geo.P - geo.N) * row + hx * D;
  const int64_t* slots = prm.slots + (b * prm.H + h) * prm.S;                    // [S]
  T* out = static_cast<T*>(prm.out) + (b * prm.H + h) * prm.S * D;               // [S, D]
  for (int64_t i = global_thread(); i < (prm.S << ln.log2G); i += grid_threads()) {
    const int g = ln.lane(i);
    if (g >= ln.packs) continue;
    const int64_t s = ln.row(i), e = slots[s];
    T* dst = out + s * D + g * kPack;
    if (e >= 0 && e < geo.N) {
      copy_pack(dst, x + e * row + g * kPack);
    } else if (e >= geo.N && e < geo.P) {
      copy_pack(dst, pyr + (e - geo.N) * row + g * kPack);
    } else {
      float z[kPack];
      zero(z);
      store_pack(dst, z);
    }
  }
}

// Slots of the levels 1..L-1 shared by a whole level-1 window (index i1 at level 1): the entry
// of level l is i1 >> ((l - 1) log2p), shifted by `shift` (-1 for the scatter's ranges R);
// past the pyramid (a ragged tail) there is none.
template <int L>
__device__ __forceinline__ void window_slots(const Geometry& geo, const int64_t* inv, int64_t i1,
                                             int shift, int64_t S, int (&s)[L]) {
#pragma unroll
  for (int l = 1; l < L; ++l) {
    const int64_t e = (i1 >> ((l - 1) * geo.log2p)) + shift;
    const int64_t v = e >= 0 && e < geo.level_len[l] ? inv[geo.level_offset[l] + e] : -1;
    s[l] = v >= 0 && v < S ? static_cast<int>(v) : -1;  // out-of-plan: "not emitted"
  }
}

// Sum over levels 1..L-1 of the rows s[l] of src (times 1/p^l when `mean`), loads issued first.
template <typename T, int L>
__device__ __forceinline__ void sum_levels(const Geometry& geo, const T* src, int64_t D,
                                           const int (&s)[L], bool mean,
                                           float (&acc)[kPack]) {
  Pack<T> v[L];
#pragma unroll
  for (int l = 1; l < L; ++l)
    if (s[l] >= 0) v[l] = load_raw(src + s[l] * D);
#pragma unroll
  for (int l = 1; l < L; ++l) {
    if (s[l] < 0) continue;
    float f[kPack];
    unpack(v[l], f);
    const float share = mean ? 1.0f / static_cast<float>(int64_t{1} << (l * geo.log2p)) : 1.0f;
#pragma unroll
    for (int k = 0; k < kPack; ++k) acc[k] += f[k] * share;
  }
}

// One thread per (block of p positions, head, lane): positions t = i p - 1 + j, j < p, share
// their entries of every level >= 1 (t + 1 lies in one aligned level-1 window), so those are
// loaded once; the level-0 slots are loaded kBatch at a time. The heads of a block's positions
// are neighbours in x, so the output rows [H, D] are written whole. kBatch 2 rather than 4:
// fewer registers, more threads resident (bf16, L 3 on an H200: 1.18x at 512K, 1.11x at 64K;
// kBatch 1 is slower, docs/results/2026-12-03-h200-op-occupancy.md). kStream: streaming stores.
template <typename T, int L, int kBatch, bool kStream>
__device__ __forceinline__ void scatter_body(ScatterParams prm, Lanes ln) {
  const Geometry& geo = prm.geo;
  const int64_t b = blockIdx.z, D = prm.D, row = prm.H * D;
  const int p = 1 << geo.log2p;
  const int64_t blocks = (geo.N >> geo.log2p) + 1;
  for (int64_t i = global_thread(); i < ((blocks * prm.H) << ln.log2G); i += grid_threads()) {
    const int g = ln.lane(i);
    if (g >= ln.packs) continue;
    const int64_t i1 = ln.row(i) / prm.H, h = ln.row(i) - i1 * prm.H;
    const int64_t* inv = prm.inverse + (b * prm.H + h) * geo.P;                     // [P]
    const T* ot = static_cast<const T*>(prm.o_tilde) + (b * prm.H + h) * prm.S * D;  // [S, D]
    T* out = static_cast<T*>(prm.out) + b * geo.N * row + h * D;                    // [N, ., D]
    int s[L];
    window_slots<L>(geo, inv, i1, -1, prm.S, s);
    float hi[kPack];
    zero(hi);
    sum_levels<T, L>(geo, ot + g * kPack, D, s, false, hi);
    for (int j0 = 0; j0 < p; j0 += kBatch) {
      int s0[kBatch];
      Pack<T> v[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int64_t t = i1 * p - 1 + j0 + u;
        const bool in = j0 + u < p && t >= 0 && t < geo.N;
        const int64_t sv = in ? inv[t] : -2;
        s0[u] = sv == -2 ? -2 : (sv >= 0 && sv < prm.S ? static_cast<int>(sv) : -1);
        if (s0[u] >= 0) v[u] = load_raw(ot + s0[u] * D + g * kPack);
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        if (s0[u] == -2) continue;  // outside [0, N)
        float acc[kPack];
        zero(acc);
        if (s0[u] >= 0) unpack(v[u], acc);
#pragma unroll
        for (int k = 0; k < kPack; ++k) acc[k] += hi[k];
        store_pack<T, kStream>(out + (i1 * p - 1 + j0 + u) * row + g * kPack, acc);
      }
    }
  }
}

// The shipped scatter (the launcher uses the defaults), and the form that asks ptxas for
// kMinBlocks blocks per SM (the tuning harness, bench/kernel_variants.h).
template <typename T, int L, int kBatch = 2, bool kStream = false>
__global__ void __launch_bounds__(kThreads) scatter_kernel(ScatterParams prm, Lanes ln) {
  scatter_body<T, L, kBatch, kStream>(prm, ln);
}
template <typename T, int L, int kBatch, bool kStream, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    scatter_kernel_min(ScatterParams prm, Lanes ln) {
  scatter_body<T, L, kBatch, kStream>(prm, ln);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) scatter_backward_kernel(ScatterBackwardParams prm,
                                                                    Lanes ln) {
  const Geometry& geo = prm.geo;
  const int64_t b = blockIdx.z, h = blockIdx.y, D = prm.D, row = prm.H * D;
  const int64_t* slots = prm.slots + (b * prm.H + h) * prm.S;                    // [S]
  const T* grad = static_cast<const T*>(prm.grad) + b * geo.N * row + h * D;      // [N, ., D]
  T* out = static_cast<T*>(prm.out) + (b * prm.H + h) * prm.S * D;               // [S, D]
  constexpr int kBatch = 8;  // rows in flight; summed in position order
  for (int64_t i = global_thread(); i < (prm.S << ln.log2G); i += grid_threads()) {
    const int g = ln.lane(i);
    if (g >= ln.packs) continue;
    const int64_t s = ln.row(i), e = slots[s];
    float acc[kPack];
    zero(acc);
    if (e >= 0 && e < geo.P) {
      const int l = static_cast<int>(level_of(geo, e));
      const int64_t w = int64_t{1} << (l * geo.log2p), idx = e - geo.level_offset[l];
      const int64_t first = (idx + 1) * w - 1;
      const int64_t last = min((idx + 2) * w - 2, geo.N - 1);
      const T* src = grad + g * kPack;
      for (int64_t t0 = first; t0 <= last; t0 += kBatch) {
        Pack<T> rows[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u)
          if (t0 + u <= last) rows[u] = load_raw(src + (t0 + u) * row);
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          if (t0 + u > last) break;
          float f[kPack];
          unpack(rows[u], f);
#pragma unroll
          for (int k = 0; k < kPack; ++k) acc[k] += f[k];
        }
      }
    }
    store_pack(out + s * D + g * kPack, acc);
  }
}

// Adds one gradient tensor's contributions to kBatch tokens of a level-1 window, for one query
// head, to acc[u]: the token's level-0 slot row (0 if none) + the 1/p^l-weighted rows of the
// window's slots s of levels >= 1.
template <typename T, int L, int kBatch>
__device__ __forceinline__ void add_window_grad(const Geometry& geo, const T* grad, int64_t D,
                                                const int (&s)[L], const int (&s0)[kBatch],
                                                float (&acc)[kBatch][kPack]) {
  Pack<T> v[kBatch];
#pragma unroll
  for (int u = 0; u < kBatch; ++u)
    if (s0[u] >= 0) v[u] = load_raw(grad + s0[u] * D);
  float hi[kPack];
  zero(hi);
  sum_levels<T, L>(geo, grad, D, s, true, hi);
#pragma unroll
  for (int u = 0; u < kBatch; ++u) {
    float f[kPack];
    zero(f);
    if (s0[u] >= 0) unpack(v[u], f);
#pragma unroll
    for (int k = 0; k < kPack; ++k) acc[u][k] += f[k] + hi[k];
  }
}

// The level-0 slots of tokens i1 p + j0 + u (u < kBatch) of query head h's inverse inv; -1 where
// none, past the window or past N.
template <int kBatch>
__device__ __forceinline__ void token_slots(const Geometry& geo, const int64_t* inv, int64_t i1,
                                            int j0, int64_t S, int (&s0)[kBatch]) {
  const int p = 1 << geo.log2p;
#pragma unroll
  for (int u = 0; u < kBatch; ++u) {
    const int64_t t = i1 * p + j0 + u;
    const int64_t sv = j0 + u < p && t < geo.N ? inv[t] : -1;
    s0[u] = sv >= 0 && sv < S ? static_cast<int>(sv) : -1;
  }
}

// Stores rows f[u] at tokens i1 p + j0 + u of dst (the token's row at dst + t * row) inside the
// window and before N, as streaming stores (the gather backward writes three [B, N, H, D]).
template <typename T, int kBatch, bool kStream = true>
__device__ __forceinline__ void store_tokens(const Geometry& geo, T* dst, int64_t row, int64_t i1,
                                             int j0, const float (&f)[kBatch][kPack]) {
  const int p = 1 << geo.log2p;
#pragma unroll
  for (int u = 0; u < kBatch; ++u)
    if (j0 + u < p && i1 * p + j0 + u < geo.N)
      store_pack<T, kStream>(dst + (i1 * p + j0 + u) * row, f[u]);
}

// One thread per (level-1 window i1, KV head hx, lane): the p tokens of the window share their
// entries of every level >= 1; for each query head of the group those are looked up once, the
// level-0 slots kBatch at a time, and serve every gradient tensor of the launch (kFused: q's,
// stored per query head, and k's and v's, summed over the group). kGroup1 (H == Hx): no sum
// over heads, every row is stored as computed (fewer live registers, more threads resident).
// Heads are neighbours in x: the rows [Hx, D] are written whole.
// kSerial (fused, H == Hx, 16-bit, L <= 3): the three tensors in a loop the compiler keeps
// rolled, so one tensor's rows are live at a time and 3 blocks fit an SM instead of 2 (bf16, L 3
// on an H200: 1.11x at 512K, 1.19x at 64K, docs/results/2026-12-03-h200-op-occupancy.md). Past
// those shapes the kernel spills even at 2 blocks, so they keep the unrolled form.
// The tuning harness (bench/kernel_variants.h) varies the last four arguments; the launcher
// uses their defaults.
template <typename T, int L, bool kFused, bool kGroup1,
          bool kSerial = kFused && kGroup1 && sizeof(T) == 2 && L <= 3,
          int kMinBlocks = kSerial ? 3 : (kGroup1 ? 2 : 1), int kBatch = 4, bool kStream = true>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    gather_backward_kernel(GatherBackwardParams prm, Lanes ln) {
  constexpr int kX = kFused ? 2 : 1;  // tensors summed over the group onto the Hx heads
  const Geometry& geo = prm.geo;
  const int64_t b = blockIdx.z, D = prm.D, row = prm.Hx * D, qrow = prm.H * D;
  const int64_t group = prm.H / prm.Hx;
  const int p = 1 << geo.log2p;
  const int64_t windows = (geo.N + p - 1) >> geo.log2p;  // the last one may be partial
  for (int64_t i = global_thread(); i < ((windows * prm.Hx) << ln.log2G); i += grid_threads()) {
    const int g = ln.lane(i);
    if (g >= ln.packs) continue;
    const int64_t i1 = ln.row(i) / prm.Hx, hx = ln.row(i) - i1 * prm.Hx;
    const T* grads[kX] = {static_cast<const T*>(prm.grad)};
    T* outs[kX] = {static_cast<T*>(prm.dx)};
    if constexpr (kFused) {
      grads[1] = static_cast<const T*>(prm.grad2);
      outs[1] = static_cast<T*>(prm.dx2);
    }
    T* dq = kFused ? static_cast<T*>(prm.dq) + b * geo.N * qrow + g * kPack : nullptr;
    for (int j0 = 0; j0 < p; j0 += kBatch) {
      float acc[kGroup1 ? 1 : kX][kBatch][kPack] = {};
      for (int64_t h = hx * group; h < (hx + 1) * group; ++h) {
        const int64_t* inv = prm.inverse + (b * prm.H + h) * geo.P;  // [P]
        const int64_t head = (b * prm.H + h) * prm.S * D + g * kPack;  // grad [B, H, S, D]
        int s[L], s0[kBatch];
        window_slots<L>(geo, inv, i1, 0, prm.S, s);
        token_slots<kBatch>(geo, inv, i1, j0, prm.S, s0);
        if constexpr (kSerial) {  // q, k, v in turn
          T* q_rows = static_cast<T*>(prm.dq) + b * geo.N * qrow + h * D + g * kPack;
#pragma unroll 1
          for (int x = 0; x < 3; ++x) {
            const T* src = x == 0 ? static_cast<const T*>(prm.grad_q)
                                  : (x == 1 ? static_cast<const T*>(prm.grad)
                                            : static_cast<const T*>(prm.grad2));
            T* dst = x == 0 ? q_rows
                            : (x == 1 ? static_cast<T*>(prm.dx) : static_cast<T*>(prm.dx2)) +
                                  b * geo.N * row + hx * D + g * kPack;
            float f[kBatch][kPack] = {};
            add_window_grad<T, L, kBatch>(geo, src + head, D, s, s0, f);
            store_tokens<T, kBatch, kStream>(geo, dst, row, i1, j0, f);  // row == qrow: H == Hx
          }
          continue;  // the group is this one head
        }
        if constexpr (kFused) {  // q: one query head per output row, nothing to sum
          float f[kBatch][kPack] = {};
          add_window_grad<T, L, kBatch>(geo, static_cast<const T*>(prm.grad_q) + head, D, s, s0,
                                        f);
          store_tokens<T, kBatch, kStream>(geo, dq + h * D, qrow, i1, j0, f);
        }
#pragma unroll
        for (int x = 0; x < kX; ++x) {
          if constexpr (kGroup1) {
            float f[kBatch][kPack] = {};
            add_window_grad<T, L, kBatch>(geo, grads[x] + head, D, s, s0, f);
            store_tokens<T, kBatch, kStream>(geo, outs[x] + b * geo.N * row + hx * D + g * kPack,
                                             row, i1, j0, f);
          } else {
            add_window_grad<T, L, kBatch>(geo, grads[x] + head, D, s, s0, acc[x]);
          }
        }
      }
      if constexpr (!kGroup1) {
#pragma unroll
        for (int x = 0; x < kX; ++x)
          store_tokens<T, kBatch, kStream>(geo, outs[x] + b * geo.N * row + hx * D + g * kPack,
                                           row, i1, j0, acc[x]);
      }
    }
  }
}

}  // namespace
}  // namespace lighthouse::cuda
