// Device helpers of the fused elementwise kernels (fused.h): loads and stores of V elements
// (one 16-byte pack when V == kPack, single elements when V == 1) and a block-wide sum.
#pragma once

#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/fused.h"

namespace lighthouse::cuda {

template <typename T, int V>
__device__ __forceinline__ void load_v(const T* __restrict__ p, float (&out)[V]) {
  if constexpr (V == kPack) {
    load_pack(p, out);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) out[k] = to_float(p[k]);
  }
}

template <typename T, int V>
__device__ __forceinline__ void store_v(T* __restrict__ p, const float (&in)[V]) {
  if constexpr (V == kPack) {
    store_pack(p, in);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) p[k] = from_float<T>(in[k]);
  }
}

// x rounded to T and back (the value a tensor of dtype T holds).
template <typename T>
__device__ __forceinline__ float round_to(float x) {
  return to_float(from_float<T>(x));
}

// Sums each of v[0..K) over the block (blockDim.x a multiple of 32, at most 1024); every thread
// receives the totals. smem holds 32 * K floats; the warps' partials are added in one fixed
// order, so the result is deterministic.
template <int K>
__device__ __forceinline__ void block_sum(float (&v)[K], float* smem) {
#pragma unroll
  for (int k = 0; k < K; ++k)
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v[k] += __shfl_xor_sync(0xffffffffu, v[k], off);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  if (lane == 0)
#pragma unroll
    for (int k = 0; k < K; ++k) smem[warp * K + k] = v[k];
  __syncthreads();
#pragma unroll
  for (int k = 0; k < K; ++k) {
    float t = 0.0f;
    for (int w = 0; w < warps; ++w) t += smem[w * K + k];
    v[k] = t;
  }
  __syncthreads();  // smem is reused by the next call
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace lighthouse::cuda
