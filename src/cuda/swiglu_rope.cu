// SwiGLU and RoPE (fused.h): one grid-stride pass each, every thread converting a pack of 8
// elements (16-byte loads) to fp32, computing and storing the result in the input's dtype; a
// single-element variant serves sizes, strides or pointers that packs cannot.
#include <cmath>

#include "cuda/fused_common.cuh"

namespace lighthouse::cuda {
namespace {

template <typename T, int V>
__global__ void __launch_bounds__(kThreads) swiglu_forward_kernel(SwigluParams prm) {
  const T* g = static_cast<const T*>(prm.g);
  const T* u = static_cast<const T*>(prm.u);
  T* y = static_cast<T*>(prm.y);
  const int64_t items = prm.n / V;
  for (int64_t i = global_thread(); i < items; i += grid_threads()) {
    float a[V], b[V];
    load_v<T, V>(g + i * V, a);
    load_v<T, V>(u + i * V, b);
#pragma unroll
    for (int k = 0; k < V; ++k) a[k] = a[k] / (1.0f + expf(-a[k])) * b[k];
    store_v<T, V>(y + i * V, a);
  }
}

template <typename T, int V>
__global__ void __launch_bounds__(kThreads) swiglu_backward_kernel(SwigluParams prm) {
  const T* g = static_cast<const T*>(prm.g);
  const T* u = static_cast<const T*>(prm.u);
  const T* dy = static_cast<const T*>(prm.dy);
  T* dg = static_cast<T*>(prm.dg);
  T* du = static_cast<T*>(prm.du);
  const int64_t items = prm.n / V;
  for (int64_t i = global_thread(); i < items; i += grid_threads()) {
    float a[V], b[V], d[V];
    load_v<T, V>(g + i * V, a);
    load_v<T, V>(u + i * V, b);
    load_v<T, V>(dy + i * V, d);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float s = 1.0f / (1.0f + expf(-a[k]));
      const float silu = a[k] * s;
      a[k] = d[k] * b[k] * s * (1.0f + a[k] * (1.0f - s));  // dg
      b[k] = d[k] * silu;                                    // du
    }
    store_v<T, V>(dg + i * V, a);
    store_v<T, V>(du + i * V, b);
  }
}

// One item: V elements of the first half of a row and the V facing them in the second half.
template <typename T, int V, bool kAdjoint>
__global__ void __launch_bounds__(kThreads) rope_kernel(RopeParams prm) {
  const T* x = static_cast<const T*>(prm.x);
  const T* cos = static_cast<const T*>(prm.cos);
  const T* sin = static_cast<const T*>(prm.sin);
  T* y = static_cast<T*>(prm.y);
  const int64_t D = prm.D, half = D / 2, per_row = half / V;
  const int64_t items = prm.B * prm.N * prm.H * per_row;
  for (int64_t i = global_thread(); i < items; i += grid_threads()) {
    const int64_t row = i / per_row;              // (b, n, h) of y, row-major
    const int64_t j = (i - row * per_row) * V;    // element in the first half
    const int64_t hh = row % prm.H, bn = row / prm.H, n = bn % prm.N, b = bn / prm.N;
    const T* xr = x + b * prm.sb + n * prm.sn + hh * prm.sh;
    float x1[V], x2[V], c1[V], c2[V], s1[V], s2[V];
    load_v<T, V>(xr + j, x1);
    load_v<T, V>(xr + half + j, x2);
    load_v<T, V>(cos + n * D + j, c1);
    load_v<T, V>(cos + n * D + half + j, c2);
    load_v<T, V>(sin + n * D + j, s1);
    load_v<T, V>(sin + n * D + half + j, s2);
    float y1[V], y2[V];
#pragma unroll
    for (int k = 0; k < V; ++k) {
      y1[k] = x1[k] * c1[k] + x2[k] * (kAdjoint ? s2[k] : s1[k]);
      y2[k] = x2[k] * c2[k] + x1[k] * (kAdjoint ? s1[k] : s2[k]);
    }
    store_v<T, V>(y + row * D + j, y1);
    store_v<T, V>(y + row * D + half + j, y2);
  }
}

}  // namespace

cudaError_t launch_swiglu_forward(const SwigluParams& prm, cudaStream_t stream) {
  if (prm.n == 0) return cudaSuccess;
  const bool vec = prm.n % kPack == 0 && aligned16(prm.g) && aligned16(prm.u) && aligned16(prm.y);
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (vec) {
      swiglu_forward_kernel<T, kPack><<<grid_for(prm.n / kPack), kThreads, 0, stream>>>(prm);
    } else {
      swiglu_forward_kernel<T, 1><<<grid_for(prm.n), kThreads, 0, stream>>>(prm);
    }
    return launched();
  });
}

cudaError_t launch_swiglu_backward(const SwigluParams& prm, cudaStream_t stream) {
  if (prm.n == 0) return cudaSuccess;
  const bool vec = prm.n % kPack == 0 && aligned16(prm.g) && aligned16(prm.u) &&
                   aligned16(prm.dy) && aligned16(prm.dg) && aligned16(prm.du);
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (vec) {
      swiglu_backward_kernel<T, kPack><<<grid_for(prm.n / kPack), kThreads, 0, stream>>>(prm);
    } else {
      swiglu_backward_kernel<T, 1><<<grid_for(prm.n), kThreads, 0, stream>>>(prm);
    }
    return launched();
  });
}

cudaError_t launch_rope(const RopeParams& prm, cudaStream_t stream) {
  if (prm.D % 2 != 0) return cudaErrorInvalidValue;
  const int64_t rows = prm.B * prm.N * prm.H, half = prm.D / 2;
  if (rows == 0 || half == 0) return cudaSuccess;
  const bool vec = half % kPack == 0 && prm.sb % kPack == 0 && prm.sn % kPack == 0 &&
                   prm.sh % kPack == 0 && aligned16(prm.x) && aligned16(prm.cos) &&
                   aligned16(prm.sin) && aligned16(prm.y);
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (vec) {
      const unsigned grid = grid_for(rows * (half / kPack));
      if (prm.adjoint) {
        rope_kernel<T, kPack, true><<<grid, kThreads, 0, stream>>>(prm);
      } else {
        rope_kernel<T, kPack, false><<<grid, kThreads, 0, stream>>>(prm);
      }
    } else {
      const unsigned grid = grid_for(rows * half);
      if (prm.adjoint) {
        rope_kernel<T, 1, true><<<grid, kThreads, 0, stream>>>(prm);
      } else {
        rope_kernel<T, 1, false><<<grid, kThreads, 0, stream>>>(prm);
      }
    }
    return launched();
  });
}

}  // namespace lighthouse::cuda
