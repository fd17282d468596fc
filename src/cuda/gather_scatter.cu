// The data-movement stages (SPEC.md §5-§7), each a pure gather (every output element is one
// fixed-order fp32 sum, so no atomics and bitwise-deterministic results):
//   gather           slot s of head h <- its pyramid entry (level 0 straight from x)
//   scatter          position t <- sum over levels of the slot whose range R holds t
//   scatter_backward slot s <- sum of grad over the positions of its range R
//   gather_backward  token t of KV head hx <- sum over the group's query heads and the levels of
//                    the slot whose window holds t, times 1/p^l
// Grids: x walks positions or slots (grid-stride, so any N and S), y the heads, z the batch.
// A (position or slot) owns G = next_pow2(D / 8) consecutive lanes of one pack each, so lane
// and row come from shifts, and every row is read or written as whole 16-byte vectors.
// Indices outside the plan (a malformed user plan) read as "not emitted" and never touch memory.
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
  const Levels& lv = prm.lv;
  const int64_t b = blockIdx.z, h = blockIdx.y, D = prm.D;
  const int64_t hx = h / (prm.H / prm.Hx), row = prm.Hx * D;
  const T* x = static_cast<const T*>(prm.x) + b * lv.N * row + hx * D;          // [N, ., D]
  const T* pyr = static_cast<const T*>(prm.pyramid) + b * (lv.P - lv.N) * row + hx * D;
  const int64_t* slots = prm.slots + (b * prm.H + h) * prm.S;                    // [S]
  T* out = static_cast<T*>(prm.out) + (b * prm.H + h) * prm.S * D;               // [S, D]
  for (int64_t i = global_thread(); i < (prm.S << ln.log2G); i += grid_threads()) {
    const int g = ln.lane(i);
    if (g >= ln.packs) continue;
    const int64_t s = ln.row(i), e = slots[s];
    T* dst = out + s * D + g * kPack;
    if (e >= 0 && e < lv.N) {
      copy_pack(dst, x + e * row + g * kPack);
    } else if (e >= lv.N && e < lv.P) {
      copy_pack(dst, pyr + (e - lv.N) * row + g * kPack);
    } else {
      float z[kPack];
      zero(z);
      store_pack(dst, z);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) scatter_kernel(ScatterParams prm, Lanes ln) {
  const Levels& lv = prm.lv;
  const int64_t b = blockIdx.z, h = blockIdx.y, D = prm.D, row = prm.H * D;
  const int64_t* inv = prm.inverse + (b * prm.H + h) * lv.P;                     // [P]
  const T* ot = static_cast<const T*>(prm.o_tilde) + (b * prm.H + h) * prm.S * D;  // [S, D]
  T* out = static_cast<T*>(prm.out) + b * lv.N * row + h * D;                    // [N, ., D]
  for (int64_t i = global_thread(); i < (lv.N << ln.log2G); i += grid_threads()) {
    const int g = ln.lane(i);
    if (g >= ln.packs) continue;
    const int64_t t = ln.row(i);
    float acc[kPack];
    zero(acc);
    for (int l = 0; l < lv.L; ++l) {
      const int64_t e = ((t + 1) >> (l * lv.log2p)) - 1;  // entry of level l whose R holds t
      if (e < 0) break;                                     // and every coarser one
      const int64_t s = inv[lv.offset[l] + e];
      if (s < 0 || s >= prm.S) continue;
      float v[kPack];
      load_pack(ot + s * D + g * kPack, v);
#pragma unroll
      for (int k = 0; k < kPack; ++k) acc[k] += v[k];
    }
    store_pack(out + t * row + g * kPack, acc);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) scatter_backward_kernel(ScatterBackwardParams prm,
                                                                    Lanes ln) {
  const Levels& lv = prm.lv;
  const int64_t b = blockIdx.z, h = blockIdx.y, D = prm.D, row = prm.H * D;
  const int64_t* slots = prm.slots + (b * prm.H + h) * prm.S;                    // [S]
  const T* grad = static_cast<const T*>(prm.grad) + b * lv.N * row + h * D;      // [N, ., D]
  T* out = static_cast<T*>(prm.out) + (b * prm.H + h) * prm.S * D;               // [S, D]
  constexpr int kBatch = 4;  // rows in flight; summed in position order
  for (int64_t i = global_thread(); i < (prm.S << ln.log2G); i += grid_threads()) {
    const int g = ln.lane(i);
    if (g >= ln.packs) continue;
    const int64_t s = ln.row(i), e = slots[s];
    float acc[kPack];
    zero(acc);
    if (e >= 0 && e < lv.P) {
      const int l = level_of(lv, e);
      const int64_t w = int64_t{1} << (l * lv.log2p), idx = e - lv.offset[l];
      const int64_t first = (idx + 1) * w - 1;
      const int64_t last = min((idx + 2) * w - 2, lv.N - 1);
      const T* src = grad + g * kPack;
      for (int64_t t0 = first; t0 <= last; t0 += kBatch) {
        float rows[kBatch][kPack];
#pragma unroll
        for (int u = 0; u < kBatch; ++u)
          if (t0 + u <= last) load_pack(src + (t0 + u) * row, rows[u]);
#pragma unroll
        for (int u = 0; u < kBatch; ++u)
          if (t0 + u <= last)
#pragma unroll
            for (int k = 0; k < kPack; ++k) acc[k] += rows[u][k];
      }
    }
    store_pack(out + s * D + g * kPack, acc);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) gather_backward_kernel(GatherBackwardParams prm,
                                                                   Lanes ln) {
  const Levels& lv = prm.lv;
  const int64_t b = blockIdx.z, hx = blockIdx.y, D = prm.D, row = prm.Hx * D;
  const int64_t group = prm.H / prm.Hx;
  T* dx = static_cast<T*>(prm.dx) + b * lv.N * row + hx * D;                     // [N, ., D]
  for (int64_t i = global_thread(); i < (lv.N << ln.log2G); i += grid_threads()) {
    const int g = ln.lane(i);
    if (g >= ln.packs) continue;
    const int64_t t = ln.row(i);
    float acc[kPack];
    zero(acc);
    for (int64_t h = hx * group; h < (hx + 1) * group; ++h) {
      const int64_t* inv = prm.inverse + (b * prm.H + h) * lv.P;
      const T* grad = static_cast<const T*>(prm.grad) + (b * prm.H + h) * prm.S * D + g * kPack;
      for (int l = 0; l < lv.L; ++l) {
        const int64_t s = inv[lv.offset[l] + (t >> (l * lv.log2p))];
        if (s < 0 || s >= prm.S) continue;
        const float share = 1.0f / static_cast<float>(int64_t{1} << (l * lv.log2p));
        float v[kPack];
        load_pack(grad + s * D, v);
#pragma unroll
        for (int k = 0; k < kPack; ++k) acc[k] += v[k] * share;
      }
    }
    store_pack(dx + t * row + g * kPack, acc);
  }
}

bool bad_dim(int64_t D) { return D % kPack != 0 || D <= 0 || D > kMaxDim; }

}  // namespace

cudaError_t launch_gather(const GatherParams& prm, cudaStream_t stream) {
  if (bad_dim(prm.D)) return cudaErrorInvalidValue;
  const Lanes ln = lanes_for(prm.D);
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    gather_kernel<decltype(tag)><<<grid3(prm.S, ln, prm.H, prm.B), kThreads, 0, stream>>>(prm, ln);
    return launched();
  });
}

cudaError_t launch_scatter(const ScatterParams& prm, cudaStream_t stream) {
  if (bad_dim(prm.D)) return cudaErrorInvalidValue;
  const Lanes ln = lanes_for(prm.D);
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    scatter_kernel<decltype(tag)>
        <<<grid3(prm.lv.N, ln, prm.H, prm.B), kThreads, 0, stream>>>(prm, ln);
    return launched();
  });
}

cudaError_t launch_scatter_backward(const ScatterBackwardParams& prm, cudaStream_t stream) {
  if (bad_dim(prm.D)) return cudaErrorInvalidValue;
  const Lanes ln = lanes_for(prm.D);
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    scatter_backward_kernel<decltype(tag)>
        <<<grid3(prm.S, ln, prm.H, prm.B), kThreads, 0, stream>>>(prm, ln);
    return launched();
  });
}

cudaError_t launch_gather_backward(const GatherBackwardParams& prm, cudaStream_t stream) {
  if (bad_dim(prm.D)) return cudaErrorInvalidValue;
  const Lanes ln = lanes_for(prm.D);
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    gather_backward_kernel<decltype(tag)>
        <<<grid3(prm.lv.N, ln, prm.Hx, prm.B), kThreads, 0, stream>>>(prm, ln);
    return launched();
  });
}

}  // namespace lighthouse::cuda
