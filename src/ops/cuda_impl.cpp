// CUDA implementations of the stage ops: shared argument checks (stage_checks.cpp), then the
// CUDA-only limits, contiguous inputs, outputs allocated here, a device guard and the current
// stream, and one torch-free launcher call (src/cuda/kernels.h) per op.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda/kernels.h"
#include "ops/stages.h"

namespace lighthouse::ops {
namespace {

namespace k = lighthouse::cuda;

k::DType kernel_dtype(const at::Tensor& t, const char* op, const char* name) {
  const at::ScalarType st = t.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kHalf || st == at::kBFloat16, op, ": CUDA ", name,
                   " must be float32, float16 or bfloat16 (float64 runs on the CPU), got ", st);
  return st == at::kFloat ? k::DType::Float32
                          : (st == at::kHalf ? k::DType::Float16 : k::DType::BFloat16);
}

void check_head_dim(int64_t D, const char* op) {
  TORCH_CHECK_VALUE(D % k::kPack == 0 && D > 0 && D <= k::kMaxDim, op,
                    ": CUDA head dim D must be a multiple of ", k::kPack, " in [", k::kPack,
                    ", ", k::kMaxDim, "], got ", D);
}

// Batch and heads index grid dimensions y and z (positions and slots use x, which has room
// for any N and S).
void check_grid(int64_t B, int64_t H, const char* op) {
  TORCH_CHECK_VALUE(B <= 65535 && H <= 65535, op, ": CUDA batch B and heads H must be <= 65535, got B = ",
                    B, ", H = ", H);
}

// scatter and gather_backward are compiled for each L up to kMaxScatterLevels.
void check_levels(int64_t levels, const char* op) {
  TORCH_CHECK_VALUE(levels <= k::kMaxScatterLevels, op, ": CUDA levels (L) must be <= ",
                    k::kMaxScatterLevels, ", got ", levels);
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

std::tuple<at::Tensor, at::Tensor> pool_score_cuda(const at::Tensor& x_in, int64_t levels,
                                                   int64_t pool, bool want_pyramid,
                                                   bool want_score) {
  const char* op = "lighthouse::_pool_score";
  const Geometry g = check_pool_score(x_in, levels, pool);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();  // [B, N, Hx, D]
  const int64_t B = x.size(0), Hx = x.size(2), D = x.size(3);
  check_head_dim(D, op);
  check_grid(B, Hx, op);
  at::Tensor pyr = at::empty(want_pyramid ? at::IntArrayRef{B, g.P1, Hx, D} : at::IntArrayRef{0},
                             x.options());  // [B, P1, Hx, D]
  at::Tensor sc = at::empty(want_score ? at::IntArrayRef{B, Hx, g.P} : at::IntArrayRef{0},
                            x.options().dtype(at::kFloat));  // [B, Hx, P]
  if (!want_pyramid && !want_score) return {pyr, sc};
  k::PoolScoreParams prm;
  prm.dtype = kernel_dtype(x, op, "x");
  prm.x = x.data_ptr();
  prm.pyramid = want_pyramid ? pyr.data_ptr() : nullptr;
  prm.score = want_score ? sc.data_ptr<float>() : nullptr;
  prm.B = B;
  prm.Hx = Hx;
  prm.D = D;
  prm.geo = g;
  check_launch(k::launch_pool_score(prm, at::cuda::getCurrentCUDAStream()), op);
  return {pyr, sc};
}

// Stock SDPA on strided views (dilated_sdpa.cpp); float64 runs on the CPU as everywhere.
std::tuple<at::Tensor, at::Tensor> dilated_score_cuda(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& v, int64_t levels,
                                                      int64_t pool, int64_t dilation) {
  const char* op = "lighthouse::_dilated_score";
  const Geometry g = check_dilated_score(q, k, v, levels, pool, dilation);
  kernel_dtype(q, op, "q");
  const c10::cuda::CUDAGuard guard(q.device());
  return dilated_score_sdpa(q, k, v, dilation, g);
}

std::tuple<at::Tensor, at::Tensor> select_cuda(const at::Tensor& sq_in, const at::Tensor& sk_in,
                                               int64_t levels, int64_t pool, int64_t topk,
                                               int64_t tile_topk, c10::string_view selection) {
  const char* op = "lighthouse::_select";
  const Config cfg = config_from_args(levels, pool, topk, tile_topk, "norm", "auto", 4, selection);
  const Geometry g = check_select(sq_in, sk_in, cfg);
  const c10::cuda::CUDAGuard guard(sq_in.device());
  const at::Tensor sq = sq_in.contiguous();  // [B, H, P]
  const at::Tensor sk = sk_in.contiguous();  // [B, Hkv, P]
  const int64_t B = sq.size(0), H = sq.size(1);
  auto opts = sq.options().dtype(at::kLong);
  at::Tensor slots = at::empty({B, H, g.S}, opts);    // [B, H, S]
  at::Tensor inverse = at::empty({B, H, g.P}, opts);  // [B, H, P]
  k::SelectParams prm;
  prm.sq = sq.data_ptr<float>();
  prm.sk = sk.data_ptr<float>();
  prm.slots = slots.data_ptr<int64_t>();
  prm.inverse = inverse.data_ptr<int64_t>();
  prm.B = B;
  prm.H = H;
  prm.Hkv = sk.size(1);
  prm.causal = cfg.selection == Selection::Causal;
  prm.geo = g;
  TORCH_CHECK_VALUE(g.N < (int64_t{1} << 31) && B * H * g.tiles < (int64_t{1} << 31), op,
                    ": CUDA select needs N < 2^31 and B * H * tiles < 2^31, got N = ", g.N,
                    ", B * H * tiles = ", B * H * g.tiles);
  const size_t smem = k::select_shared_bytes(prm);
  const size_t limit = at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin;
  TORCH_CHECK_VALUE(
      smem <= limit, op, ": tile_topk (m) = ", g.m, " with pool (p) = ", g.p,
      " and levels (L) = ", g.L,
      cfg.selection == Selection::Causal ? " (causal, C = " + std::to_string(g.C) + ")"
                                         : std::string(),
      " needs ", smem, " bytes of shared memory per block on CUDA, the device has ", limit);
  check_launch(k::launch_select(prm, at::cuda::getCurrentCUDAStream()), op);
  return {slots, inverse};
}

at::Tensor gather_cuda(const at::Tensor& x_in, const at::Tensor& pyramid_in,
                       const at::Tensor& slots_in, const at::Tensor& inverse, int64_t levels,
                       int64_t pool) {
  const char* op = "lighthouse::_gather";
  const Geometry g = check_gather(x_in, pyramid_in, slots_in, inverse, levels, pool);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();              // [B, N, Hx, D]
  const at::Tensor pyramid = pyramid_in.contiguous();  // [B, P1, Hx, D]
  const at::Tensor slots = slots_in.contiguous();      // [B, H, S]
  const int64_t B = x.size(0), H = slots.size(1), S = slots.size(2), D = x.size(3);
  check_head_dim(D, op);
  check_grid(B, H, op);
  at::Tensor out = at::empty({B, H, S, D}, x.options());  // [B, H, S, D]
  k::GatherParams prm;
  prm.dtype = kernel_dtype(x, op, "x");
  prm.x = x.data_ptr();
  prm.pyramid = pyramid.data_ptr();
  prm.slots = slots.data_ptr<int64_t>();
  prm.out = out.data_ptr();
  prm.B = B;
  prm.H = H;
  prm.Hx = x.size(2);
  prm.S = S;
  prm.D = D;
  prm.geo = g;
  check_launch(k::launch_gather(prm, at::cuda::getCurrentCUDAStream()), op);
  return out;
}

at::Tensor gather_backward_cuda(const at::Tensor& grad_in, const at::Tensor& inverse_in,
                                int64_t levels, int64_t pool, int64_t kv_heads) {
  const char* op = "lighthouse::_gather_backward";
  const Geometry g = check_gather_backward(grad_in, inverse_in, levels, pool, kv_heads);
  check_levels(levels, op);
  const c10::cuda::CUDAGuard guard(grad_in.device());
  const at::Tensor grad = grad_in.contiguous();        // [B, H, S, D]
  const at::Tensor inverse = inverse_in.contiguous();  // [B, H, P]
  const int64_t B = grad.size(0), H = grad.size(1), D = grad.size(3);
  check_head_dim(D, op);
  check_grid(B, H, op);
  at::Tensor dx = at::empty({B, g.N, kv_heads, D}, grad.options());  // [B, N, Hkv, D]
  k::GatherBackwardParams prm;
  prm.dtype = kernel_dtype(grad, op, "grad");
  prm.grad = grad.data_ptr();
  prm.inverse = inverse.data_ptr<int64_t>();
  prm.dx = dx.data_ptr();
  prm.B = B;
  prm.H = H;
  prm.Hx = kv_heads;
  prm.S = grad.size(2);
  prm.D = D;
  prm.geo = g;
  check_launch(k::launch_gather_backward(prm, at::cuda::getCurrentCUDAStream()), op);
  return dx;
}

at::Tensor scatter_cuda(const at::Tensor& o_in, const at::Tensor& slots,
                        const at::Tensor& inverse_in, int64_t levels, int64_t pool) {
  const char* op = "lighthouse::_scatter";
  const Geometry g = check_scatter(o_in, slots, inverse_in, levels, pool);
  check_levels(levels, op);
  const c10::cuda::CUDAGuard guard(o_in.device());
  const at::Tensor o_tilde = o_in.contiguous();        // [B, H, S, D]
  const at::Tensor inverse = inverse_in.contiguous();  // [B, H, P]
  const int64_t B = o_tilde.size(0), H = o_tilde.size(1), D = o_tilde.size(3);
  check_head_dim(D, op);
  check_grid(B, H, op);
  at::Tensor out = at::empty({B, g.N, H, D}, o_tilde.options());  // [B, N, H, D]
  k::ScatterParams prm;
  prm.dtype = kernel_dtype(o_tilde, op, "o_tilde");
  prm.o_tilde = o_tilde.data_ptr();
  prm.inverse = inverse.data_ptr<int64_t>();
  prm.out = out.data_ptr();
  prm.B = B;
  prm.H = H;
  prm.S = o_tilde.size(2);
  prm.D = D;
  prm.geo = g;
  check_launch(k::launch_scatter(prm, at::cuda::getCurrentCUDAStream()), op);
  return out;
}

at::Tensor scatter_backward_cuda(const at::Tensor& grad_in, const at::Tensor& slots_in,
                                 int64_t levels, int64_t pool) {
  const char* op = "lighthouse::_scatter_backward";
  const Geometry g = check_scatter_backward(grad_in, slots_in, levels, pool);
  const c10::cuda::CUDAGuard guard(grad_in.device());
  const at::Tensor grad = grad_in.contiguous();    // [B, N, H, D]
  const at::Tensor slots = slots_in.contiguous();  // [B, H, S]
  const int64_t B = grad.size(0), H = grad.size(2), S = slots.size(2), D = grad.size(3);
  check_head_dim(D, op);
  check_grid(B, H, op);
  at::Tensor out = at::empty({B, H, S, D}, grad.options());  // [B, H, S, D]
  k::ScatterBackwardParams prm;
  prm.dtype = kernel_dtype(grad, op, "grad");
  prm.grad = grad.data_ptr();
  prm.slots = slots.data_ptr<int64_t>();
  prm.out = out.data_ptr();
  prm.B = B;
  prm.H = H;
  prm.S = S;
  prm.D = D;
  prm.geo = g;
  check_launch(k::launch_scatter_backward(prm, at::cuda::getCurrentCUDAStream()), op);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lighthouse, CUDA, m) {
  m.impl("_pool_score", &pool_score_cuda);
  m.impl("_dilated_score", &dilated_score_cuda);
  m.impl("_select", &select_cuda);
  m.impl("_gather", &gather_cuda);
  m.impl("_gather_backward", &gather_backward_cuda);
  m.impl("_scatter", &scatter_cuda);
  m.impl("_scatter_backward", &scatter_backward_cuda);
}

}  // namespace lighthouse::ops
