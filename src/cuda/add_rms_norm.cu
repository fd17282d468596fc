// Residual add + RMSNorm (fused.h) in one pass: a block per row (grid-stride over rows), one
// pack of 8 elements per thread held in registers from the load of x and r to the store of h
// and y, the row's sums reduced with shuffles and one shared-memory step. The backward reads
// h, gy (and gh) once, reduces both of its row sums together and keeps each thread's weight
// gradient in registers across the block's rows, written once per block.
#include "cuda/fused_common.cuh"

namespace lighthouse::cuda {
namespace {

constexpr int64_t kMaxGrid = int64_t{1} << 30;
constexpr int64_t kBackwardBlocks = 1024;  // rows per block ~ rows / 1024: few dw partials

template <typename T, typename L>
__global__ void __launch_bounds__(1024) add_rms_norm_kernel(AddRmsNormParams prm) {
  __shared__ float smem[32];
  const T* x = static_cast<const T*>(prm.x);
  const L* r = static_cast<const L*>(prm.r);
  T* h = static_cast<T*>(prm.h);
  L* y = static_cast<L*>(prm.y);
  const int64_t cols = prm.cols, c = static_cast<int64_t>(threadIdx.x) * kPack;
  const bool active = c < cols;
  float w[kPack] = {};
  if (active) load_pack(prm.weight + c, w);
  for (int64_t row = blockIdx.x; row < prm.rows; row += gridDim.x) {
    const int64_t off = row * cols + c;
    float hv[kPack] = {};
    if (active) {
      float rv[kPack];
      load_pack(x + off, hv);
      load_pack(r + off, rv);
#pragma unroll
      for (int k = 0; k < kPack; ++k) hv[k] = round_to<T>(hv[k] + rv[k]);  // h as stored
      store_pack(h + off, hv);
    }
    float ss[1] = {0.0f};
#pragma unroll
    for (int k = 0; k < kPack; ++k) ss[0] += hv[k] * hv[k];
    block_sum(ss, smem);
    const float rstd = rsqrtf(ss[0] / static_cast<float>(cols) + prm.eps);
    if (active) {
#pragma unroll
      for (int k = 0; k < kPack; ++k) hv[k] = hv[k] * rstd * w[k];
      store_pack(y + off, hv);
    }
  }
}

template <typename T, typename L>
__global__ void __launch_bounds__(1024) add_rms_norm_backward_kernel(AddRmsNormBackwardParams prm) {
  __shared__ float smem[64];
  const T* h = static_cast<const T*>(prm.h);
  const L* gy = static_cast<const L*>(prm.gy);
  const T* gh = static_cast<const T*>(prm.gh);
  T* dx = static_cast<T*>(prm.dx);
  L* dr = static_cast<L*>(prm.dr);
  const int64_t cols = prm.cols, c = static_cast<int64_t>(threadIdx.x) * kPack;
  const bool active = c < cols;
  const float inv_cols = 1.0f / static_cast<float>(cols);
  float w[kPack] = {}, dw[kPack] = {};
  if (active) load_pack(prm.weight + c, w);
  for (int64_t row = blockIdx.x; row < prm.rows; row += gridDim.x) {
    const int64_t off = row * cols + c;
    float hv[kPack] = {}, g[kPack] = {};
    if (active) {
      load_pack(h + off, hv);
      load_pack(gy + off, g);
    }
    float sums[2] = {0.0f, 0.0f};  // sum h^2, sum gy * w * h
#pragma unroll
    for (int k = 0; k < kPack; ++k) {
      sums[0] += hv[k] * hv[k];
      sums[1] += g[k] * w[k] * hv[k];
    }
    block_sum(sums, smem);
    const float rstd = rsqrtf(sums[0] * inv_cols + prm.eps);
    const float coef = rstd * rstd * rstd * sums[1] * inv_cols;
    if (active) {
      float d[kPack];
      if (gh != nullptr) {
        load_pack(gh + off, d);
      } else {
#pragma unroll
        for (int k = 0; k < kPack; ++k) d[k] = 0.0f;
      }
#pragma unroll
      for (int k = 0; k < kPack; ++k) {
        d[k] += rstd * g[k] * w[k] - coef * hv[k];
        dw[k] += g[k] * hv[k] * rstd;
      }
      store_pack(dx + off, d);
      store_pack(dr + off, d);
    }
  }
  if (active) store_pack(prm.dw_partial + static_cast<int64_t>(blockIdx.x) * cols + c, dw);
}

unsigned block_for(int64_t cols) {
  const int64_t packs = cols / kPack;
  return static_cast<unsigned>((packs + 31) / 32 * 32);
}

// Calls f(T{}, L{}) with the element types named by dt and low.
template <typename F>
cudaError_t dispatch_two(DType dt, DType low, F&& f) {
  return dispatch_dtype(dt, [&](auto t) {
    return dispatch_dtype(low, [&](auto l) { return f(t, l); });
  });
}

bool shape_ok(int64_t cols) { return cols % kPack == 0 && cols > 0 && cols <= kMaxNormCols; }

}  // namespace

cudaError_t launch_add_rms_norm(const AddRmsNormParams& prm, cudaStream_t stream) {
  if (!shape_ok(prm.cols) || !aligned16(prm.x) || !aligned16(prm.r) || !aligned16(prm.h) ||
      !aligned16(prm.y) || !aligned16(prm.weight))
    return cudaErrorInvalidValue;
  if (prm.rows == 0) return cudaSuccess;
  const unsigned grid = static_cast<unsigned>(prm.rows < kMaxGrid ? prm.rows : kMaxGrid);
  return dispatch_two(prm.dtype, prm.low, [&](auto t, auto l) {
    add_rms_norm_kernel<decltype(t), decltype(l)><<<grid, block_for(prm.cols), 0, stream>>>(prm);
    return launched();
  });
}

int64_t add_rms_norm_backward_blocks(int64_t rows) {
  return rows < kBackwardBlocks ? rows : kBackwardBlocks;
}

cudaError_t launch_add_rms_norm_backward(const AddRmsNormBackwardParams& prm,
                                         cudaStream_t stream) {
  if (!shape_ok(prm.cols) || !aligned16(prm.h) || !aligned16(prm.gy) ||
      (prm.gh != nullptr && !aligned16(prm.gh)) || !aligned16(prm.dx) || !aligned16(prm.dr) ||
      !aligned16(prm.weight) || !aligned16(prm.dw_partial))
    return cudaErrorInvalidValue;
  if (prm.rows == 0) return cudaSuccess;
  const unsigned grid = static_cast<unsigned>(add_rms_norm_backward_blocks(prm.rows));
  return dispatch_two(prm.dtype, prm.low, [&](auto t, auto l) {
    add_rms_norm_backward_kernel<decltype(t), decltype(l)>
        <<<grid, block_for(prm.cols), 0, stream>>>(prm);
    return launched();
  });
}

}  // namespace lighthouse::cuda
