// Device helpers shared by the Lighthouse kernels: packs of 8 elements moved with 16-byte
// vector loads and stores and converted to fp32, the dtype dispatch, grid sizing for
// grid-stride loops (the level arithmetic is include/lighthouse/geometry.h's).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "cuda/kernels.h"

namespace lighthouse::cuda {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// kPack consecutive elements of type T held as raw 32-bit words (16 bytes for 16-bit types,
// 32 bytes for fp32), so a pack costs 4 or 8 registers until it is converted.
template <typename T>
struct Pack {
  static constexpr int kVec = sizeof(T) * kPack / 16;  // 16-byte words per pack
  uint4 w[kVec];
};

template <typename T>
__device__ __forceinline__ Pack<T> load_raw(const T* __restrict__ src) {
  Pack<T> p;
  const uint4* s = reinterpret_cast<const uint4*>(src);
#pragma unroll
  for (int i = 0; i < Pack<T>::kVec; ++i) p.w[i] = __ldg(s + i);
  return p;
}

// Two elements of a 32-bit word to fp32, and back (round to nearest even).
__device__ __forceinline__ float2 word_to_float2(uint32_t x, __nv_bfloat16) {
  return make_float2(__uint_as_float(x << 16), __uint_as_float(x & 0xffff0000u));
}
__device__ __forceinline__ float2 word_to_float2(uint32_t x, __half) {
  __half2 h;
  memcpy(&h, &x, sizeof h);
  return __half22float2(h);
}
__device__ __forceinline__ uint32_t float2_to_word(float a, float b, __nv_bfloat16) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
  uint32_t x;
  memcpy(&x, &v, sizeof x);
  return x;
}
__device__ __forceinline__ uint32_t float2_to_word(float a, float b, __half) {
  const __half2 v = __floats2half2_rn(a, b);
  uint32_t x;
  memcpy(&x, &v, sizeof x);
  return x;
}

template <typename T>
__device__ __forceinline__ void unpack(const Pack<T>& p, float (&out)[kPack]) {
  const uint32_t* w = reinterpret_cast<const uint32_t*>(p.w);
#pragma unroll
  for (int i = 0; i < kPack * static_cast<int>(sizeof(T)) / 4; ++i) {
    if constexpr (sizeof(T) == 4) {
      out[i] = __uint_as_float(w[i]);
    } else {
      const float2 f = word_to_float2(w[i], T{});
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  }
}

template <typename T>
__device__ __forceinline__ void load_pack(const T* __restrict__ src, float (&out)[kPack]) {
  unpack(load_raw(src), out);
}

// kStream: a streaming store (st.global.cs, evict-first in L2), for kernels whose writes far
// exceed L2 and would otherwise evict the rows they read again.
template <typename T, bool kStream = false>
__device__ __forceinline__ void store_pack(T* __restrict__ dst, const float (&in)[kPack]) {
  Pack<T> p;
  uint32_t* w = reinterpret_cast<uint32_t*>(p.w);
#pragma unroll
  for (int i = 0; i < kPack * static_cast<int>(sizeof(T)) / 4; ++i) {
    if constexpr (sizeof(T) == 4) {
      w[i] = __float_as_uint(in[i]);
    } else {
      w[i] = float2_to_word(in[2 * i], in[2 * i + 1], T{});
    }
  }
  uint4* d = reinterpret_cast<uint4*>(dst);
#pragma unroll
  for (int i = 0; i < Pack<T>::kVec; ++i) {
    if constexpr (kStream)
      __stcs(d + i, p.w[i]);
    else
      d[i] = p.w[i];
  }
}

// Raw 16-byte copy of one pack (gather: no conversion needed).
template <typename T>
__device__ __forceinline__ void copy_pack(T* __restrict__ dst, const T* __restrict__ src) {
  const uint4* s = reinterpret_cast<const uint4*>(src);
  uint4* d = reinterpret_cast<uint4*>(dst);
  uint4 tmp[Pack<T>::kVec];
#pragma unroll
  for (int w = 0; w < Pack<T>::kVec; ++w) tmp[w] = __ldg(s + w);
#pragma unroll
  for (int w = 0; w < Pack<T>::kVec; ++w) d[w] = tmp[w];
}

// Calls f(T{}) with T the element type named by dt.
template <typename F>
cudaError_t dispatch_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: return f(float{});
    case DType::Float16: return f(__half{});
    case DType::BFloat16: return f(__nv_bfloat16{});
  }
  return cudaErrorInvalidValue;
}

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over `work` items: enough to fill the device, never more than
// the grid's x limit (the loops below are correct for any grid size).
inline unsigned grid_for(int64_t work) {
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  constexpr int64_t kMaxBlocks = int64_t{1} << 30;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// Launch check: the error of the launch itself (bad configuration), not of the kernel's run.
inline cudaError_t launched() { return cudaGetLastError(); }

}  // namespace lighthouse::cuda
