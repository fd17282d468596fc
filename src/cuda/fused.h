// Torch-free CUDA kernels of the model's elementwise layers (src/model/fused.h): SwiGLU, RoPE
// and the residual add fused with RMSNorm, forward and backward. As kernels.h: a params struct
// of raw pointers and int64 sizes per kernel, a launcher that takes a cudaStream_t, checks the
// launch and returns its error code. Element types float32, float16, bfloat16; math in fp32.
// The ops layer (src/ops/fused_cuda.cpp) checks what each launcher states it needs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/kernels.h"

namespace lighthouse::cuda {

// SwiGLU over n elements of contiguous tensors of one dtype. Forward: y = silu(g) * u.
// Backward (dy given): dg = dy * u * s * (1 + g * (1 - s)), du = dy * silu(g), s = sigmoid(g).
// Packs of 8 when n % 8 == 0 and every pointer is 16-byte aligned, single elements otherwise.
struct SwigluParams {
  DType dtype = DType::Float32;
  const void* g = nullptr;
  const void* u = nullptr;
  const void* dy = nullptr;  // backward only
  void* y = nullptr;         // forward only
  void* dg = nullptr;        // backward only
  void* du = nullptr;        // backward only
  int64_t n = 0;
};
cudaError_t launch_swiglu_forward(const SwigluParams& prm, cudaStream_t stream);
cudaError_t launch_swiglu_backward(const SwigluParams& prm, cudaStream_t stream);

// RoPE on x [B, N, H, D] (strides sb, sn, sh in elements, last stride 1) with the tables cos,
// sin [N, 1, D] (contiguous, sin signed as src/model/layers.h's RopeTables) -> y [B, N, H, D]
// contiguous. Forward: y = x * cos + swap_halves(x) * sin; adjoint (the backward, x the
// gradient): y = x * cos + swap_halves(x * sin). D even; packs of 8 when D / 2 % 8 == 0 and
// the strides and pointers allow 16-byte accesses.
struct RopeParams {
  DType dtype = DType::Float32;
  const void* x = nullptr;
  const void* cos = nullptr;
  const void* sin = nullptr;
  void* y = nullptr;
  int64_t B = 0, N = 0, H = 0, D = 0;
  int64_t sb = 0, sn = 0, sh = 0;
  bool adjoint = false;
};
cudaError_t launch_rope(const RopeParams& prm, cudaStream_t stream);

// Residual add + RMSNorm over rows of `cols` elements (contiguous [rows, cols]). `dtype` is
// that of x, h (and, backward, of gh and dx); `low` that of r and y (gy and dr). weight is fp32
// [cols]. Needs cols % 8 == 0, cols <= kMaxNormCols and 16-byte aligned pointers: one pack of 8
// per thread, a block per row, the row held in registers (one pass).
// Forward: h = x + r (rounded to dtype), y = h * rstd * weight, rstd = 1 / sqrt(mean(h^2) + eps).
constexpr int64_t kMaxNormCols = 8192;
struct AddRmsNormParams {
  DType dtype = DType::Float32;
  DType low = DType::Float32;
  const void* x = nullptr;
  const void* r = nullptr;
  const float* weight = nullptr;
  void* h = nullptr;
  void* y = nullptr;
  int64_t rows = 0, cols = 0;
  float eps = 1e-5f;
};
cudaError_t launch_add_rms_norm(const AddRmsNormParams& prm, cudaStream_t stream);

// Backward: the gradient into h from both outputs, dh = gh + rstd * (gy*w - h * rstd^2 *
// mean(gy*w*h)), written as dx (dtype) and dr (low); gh may be null (h unused). dw_partial
// [add_rms_norm_backward_blocks(rows), cols] fp32 receives each block's sum over its rows of
// gy * h * rstd; the caller sums it over the blocks.
struct AddRmsNormBackwardParams {
  DType dtype = DType::Float32;
  DType low = DType::Float32;
  const void* h = nullptr;
  const float* weight = nullptr;
  const void* gy = nullptr;
  const void* gh = nullptr;
  void* dx = nullptr;
  void* dr = nullptr;
  float* dw_partial = nullptr;
  int64_t rows = 0, cols = 0;
  float eps = 1e-5f;
};
int64_t add_rms_norm_backward_blocks(int64_t rows);
cudaError_t launch_add_rms_norm_backward(const AddRmsNormBackwardParams& prm,
                                         cudaStream_t stream);

}  // namespace lighthouse::cuda
