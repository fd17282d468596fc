// CUDA backend of the stage ops (after the shared checks of stage_impls.h, under a device
// guard): the CUDA-only limits, contiguous inputs, outputs allocated here, and one torch-free
// launcher call (src/cuda/kernels.h) per op on the current stream, its params filled by
// stage_params.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda/kernels.h"
#include "ops/stage_impls.h"

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

// scatter and gather_backward are compiled for each L up to kMaxScatterLevels.
void check_levels(int64_t levels, const char* op) {
  TORCH_CHECK_VALUE(levels <= k::kMaxScatterLevels, op, ": CUDA levels (L) must be <= ",
                    k::kMaxScatterLevels, ", got ", levels);
}

// The params of a data-moving kernel: the CUDA-only limits on D (one pack of kPack elements
// per thread, D <= kMaxDim) and on B and H (grid dimensions z and y; positions and slots use
// x, which has room for any N and S), the kernel dtype of `data` and the shared sizes.
template <class Params>
Params stage_params(const char* op, const at::Tensor& data, const char* name, int64_t B,
                    int64_t H, int64_t Hx, int64_t S, int64_t D, const Geometry& g) {
  TORCH_CHECK_VALUE(D % k::kPack == 0 && D > 0 && D <= k::kMaxDim, op,
                    ": CUDA head dim D must be a multiple of ", k::kPack, " in [", k::kPack,
                    ", ", k::kMaxDim, "], got ", D);
  TORCH_CHECK_VALUE(B <= 65535 && H <= 65535, op,
                    ": CUDA batch B and heads H must be <= 65535, got B = ", B, ", H = ", H);
  Params prm;
  prm.dtype = kernel_dtype(data, op, name);
  prm.B = B;
  prm.H = H;
  prm.Hx = Hx;
  prm.S = S;
  prm.D = D;
  prm.geo = g;
  return prm;
}

// Runs `launch` on the current stream; a failed launch is an error naming the op.
template <class Params>
void launch(cudaError_t (*launcher)(const Params&, cudaStream_t), const Params& prm,
            const char* op) {
  const cudaError_t err = launcher(prm, at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

struct Cuda {
  using Guard = c10::cuda::CUDAGuard;

  static std::tuple<at::Tensor, at::Tensor> pool_score(const at::Tensor& x_in, const Geometry& g,
                                                       bool want_pyramid, bool want_score) {
    const char* op = "lighthouse::_pool_score";
    const at::Tensor x = x_in.contiguous();  // [B, N, Hx, D]
    const int64_t B = x.size(0), Hx = x.size(2), D = x.size(3);
    auto prm = stage_params<k::PoolScoreParams>(op, x, "x", B, Hx, Hx, 0, D, g);
    at::Tensor pyr = at::empty(want_pyramid ? at::IntArrayRef{B, g.P1, Hx, D} : at::IntArrayRef{0},
                               x.options());  // [B, P1, Hx, D]
    at::Tensor sc = at::empty(want_score ? at::IntArrayRef{B, Hx, g.P} : at::IntArrayRef{0},
                              x.options().dtype(at::kFloat));  // [B, Hx, P]
    if (!want_pyramid && !want_score) return {pyr, sc};
    prm.part[0] = {x.data_ptr(), want_pyramid ? pyr.data_ptr() : nullptr,
                   want_score ? sc.data_ptr<float>() : nullptr, Hx};
    launch(k::launch_pool_score, prm, op);
    return {pyr, sc};
  }

  // The pyramids of q, k and v and the scores of q and k in one launch; each output bitwise
  // equals pool_score's.
  static std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> pool_score_qkv(
      const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in, int64_t levels,
      int64_t pool, bool want_score) {
    const char* op = "lighthouse::_pool_score_qkv";
    const Geometry g = check_pool_score_qkv(q_in, k_in, v_in, levels, pool);
    const c10::cuda::CUDAGuard guard(q_in.device());
    const at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const int64_t B = q.size(0), H = q.size(2), Hkv = k.size(2), D = q.size(3);
    auto prm = stage_params<k::PoolScoreParams>(op, q, "q", B, H, Hkv, 0, D, g);
    at::Tensor pyr_q = at::empty({B, g.P1, H, D}, q.options());    // [B, P1, H, D]
    at::Tensor pyr_k = at::empty({B, g.P1, Hkv, D}, q.options());  // [B, P1, Hkv, D]
    at::Tensor pyr_v = at::empty({B, g.P1, Hkv, D}, q.options());  // [B, P1, Hkv, D]
    const auto f32 = q.options().dtype(at::kFloat);
    at::Tensor sq = at::empty(want_score ? at::IntArrayRef{B, H, g.P} : at::IntArrayRef{0}, f32);
    at::Tensor sk = at::empty(want_score ? at::IntArrayRef{B, Hkv, g.P} : at::IntArrayRef{0}, f32);
    prm.parts = 3;
    prm.part[0] = {q.data_ptr(), pyr_q.data_ptr(), want_score ? sq.data_ptr<float>() : nullptr, H};
    prm.part[1] = {k.data_ptr(), pyr_k.data_ptr(), want_score ? sk.data_ptr<float>() : nullptr,
                   Hkv};
    prm.part[2] = {v.data_ptr(), pyr_v.data_ptr(), nullptr, Hkv};
    launch(k::launch_pool_score, prm, op);
    return {pyr_q, pyr_k, pyr_v, sq, sk};
  }

  // Stock SDPA on strided views (dilated_sdpa.cpp); float64 runs on the CPU as everywhere.
  static std::tuple<at::Tensor, at::Tensor> dilated_score(const at::Tensor& q, const at::Tensor& k,
                                                          const at::Tensor& v, int64_t dilation,
                                                          const Geometry& g) {
    kernel_dtype(q, "lighthouse::_dilated_score", "q");
    return dilated_score_sdpa(q, k, v, dilation, g);
  }

  static std::tuple<at::Tensor, at::Tensor> select(const at::Tensor& sq_in, const at::Tensor& sk_in,
                                                   Selection selection, const Geometry& g,
                                                   const at::Tensor& prev_sq_in,
                                                   const at::Tensor& prev_sk_in) {
    const char* op = "lighthouse::_select";
    const at::Tensor sq = sq_in.contiguous();  // [B, H, P]
    const at::Tensor sk = sk_in.contiguous();  // [B, Hkv, P]
    const bool halo = prev_sq_in.defined();
    const at::Tensor prev_sq = halo ? prev_sq_in.contiguous() : at::Tensor();  // [B, H, L-1]
    const at::Tensor prev_sk = halo ? prev_sk_in.contiguous() : at::Tensor();  // [B, Hkv, L-1]
    const int64_t B = sq.size(0), H = sq.size(1);
    auto opts = sq.options().dtype(at::kLong);
    at::Tensor slots = at::empty({B, H, g.S}, opts);    // [B, H, S]
    at::Tensor inverse = at::empty({B, H, g.P}, opts);  // [B, H, P]
    k::SelectParams prm;
    prm.sq = sq.data_ptr<float>();
    prm.sk = sk.data_ptr<float>();
    prm.prev_sq = halo ? prev_sq.data_ptr<float>() : nullptr;
    prm.prev_sk = halo ? prev_sk.data_ptr<float>() : nullptr;
    prm.slots = slots.data_ptr<int64_t>();
    prm.inverse = inverse.data_ptr<int64_t>();
    prm.B = B;
    prm.H = H;
    prm.Hx = sk.size(1);
    prm.causal = selection == Selection::Causal;
    prm.geo = g;
    TORCH_CHECK_VALUE(g.N < (int64_t{1} << 31) && B * H * g.tiles < (int64_t{1} << 31), op,
                      ": CUDA select needs N < 2^31 and B * H * tiles < 2^31, got N = ", g.N,
                      ", B * H * tiles = ", B * H * g.tiles);
    const size_t smem = k::select_shared_bytes(prm);
    const size_t limit = at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin;
    TORCH_CHECK_VALUE(
        smem <= limit, op, ": tile_topk (m) = ", g.m, " with pool (p) = ", g.p,
        " and levels (L) = ", g.L,
        prm.causal ? " (causal, C = " + std::to_string(g.C) + ")" : std::string(), " needs ",
        smem, " bytes of shared memory per block on CUDA, the device has ", limit);
    launch(k::launch_select, prm, op);
    return {slots, inverse};
  }

  static at::Tensor gather(const at::Tensor& x_in, const at::Tensor& pyramid_in,
                           const at::Tensor& slots_in, const at::Tensor& /*inverse*/,
                           const Geometry& g) {
    const char* op = "lighthouse::_gather";
    const at::Tensor x = x_in.contiguous();              // [B, N, Hx, D]
    const at::Tensor pyramid = pyramid_in.contiguous();  // [B, P1, Hx, D]
    const at::Tensor slots = slots_in.contiguous();      // [B, H, S]
    const int64_t B = x.size(0), H = slots.size(1), S = slots.size(2), D = x.size(3);
    auto prm = stage_params<k::GatherParams>(op, x, "x", B, H, x.size(2), S, D, g);
    at::Tensor out = at::empty({B, H, S, D}, x.options());  // [B, H, S, D]
    prm.x = x.data_ptr();
    prm.pyramid = pyramid.data_ptr();
    prm.slots = slots.data_ptr<int64_t>();
    prm.out = out.data_ptr();
    launch(k::launch_gather, prm, op);
    return out;
  }

  static at::Tensor gather_backward(const at::Tensor& grad_in, const at::Tensor& inverse_in,
                                    int64_t kv_heads, const Geometry& g) {
    const char* op = "lighthouse::_gather_backward";
    check_levels(g.L, op);
    const at::Tensor grad = grad_in.contiguous();        // [B, H, S, D]
    const at::Tensor inverse = inverse_in.contiguous();  // [B, H, P]
    const int64_t B = grad.size(0), H = grad.size(1), D = grad.size(3);
    auto prm =
        stage_params<k::GatherBackwardParams>(op, grad, "grad", B, H, kv_heads, grad.size(2), D, g);
    at::Tensor dx = at::empty({B, g.N, kv_heads, D}, grad.options());  // [B, N, Hkv, D]
    prm.grad = grad.data_ptr();
    prm.inverse = inverse.data_ptr<int64_t>();
    prm.dx = dx.data_ptr();
    launch(k::launch_gather_backward, prm, op);
    return dx;
  }

  // The gradients of q, k and v in one launch (the slot lookups shared); each output bitwise
  // equals gather_backward's.
  static std::tuple<at::Tensor, at::Tensor, at::Tensor> gather_backward_qkv(
      const at::Tensor& gq_in, const at::Tensor& gk_in, const at::Tensor& gv_in,
      const at::Tensor& inverse_in, int64_t levels, int64_t pool, int64_t kv_heads) {
    const char* op = "lighthouse::_gather_backward_qkv";
    const Geometry g =
        check_gather_backward_qkv(gq_in, gk_in, gv_in, inverse_in, levels, pool, kv_heads);
    const c10::cuda::CUDAGuard guard(gq_in.device());
    check_levels(g.L, op);
    const at::Tensor gq = gq_in.contiguous(), gk = gk_in.contiguous(), gv = gv_in.contiguous();
    const at::Tensor inverse = inverse_in.contiguous();  // [B, H, P]
    const int64_t B = gq.size(0), H = gq.size(1), D = gq.size(3);
    auto prm = stage_params<k::GatherBackwardParams>(op, gq, "grad_q", B, H, kv_heads,
                                                     gq.size(2), D, g);
    at::Tensor dq = at::empty({B, g.N, H, D}, gq.options());         // [B, N, H, D]
    at::Tensor dk = at::empty({B, g.N, kv_heads, D}, gq.options());  // [B, N, Hkv, D]
    at::Tensor dv = at::empty({B, g.N, kv_heads, D}, gq.options());  // [B, N, Hkv, D]
    prm.inverse = inverse.data_ptr<int64_t>();
    prm.grad_q = gq.data_ptr();
    prm.dq = dq.data_ptr();
    prm.grad = gk.data_ptr();
    prm.dx = dk.data_ptr();
    prm.grad2 = gv.data_ptr();
    prm.dx2 = dv.data_ptr();
    launch(k::launch_gather_backward, prm, op);
    return {dq, dk, dv};
  }

  static at::Tensor scatter(const at::Tensor& o_in, const at::Tensor& /*slots*/,
                            const at::Tensor& inverse_in, const Geometry& g) {
    const char* op = "lighthouse::_scatter";
    check_levels(g.L, op);
    const at::Tensor o_tilde = o_in.contiguous();        // [B, H, S, D]
    const at::Tensor inverse = inverse_in.contiguous();  // [B, H, P]
    const int64_t B = o_tilde.size(0), H = o_tilde.size(1), D = o_tilde.size(3);
    auto prm =
        stage_params<k::ScatterParams>(op, o_tilde, "o_tilde", B, H, 0, o_tilde.size(2), D, g);
    at::Tensor out = at::empty({B, g.N, H, D}, o_tilde.options());  // [B, N, H, D]
    prm.o_tilde = o_tilde.data_ptr();
    prm.inverse = inverse.data_ptr<int64_t>();
    prm.out = out.data_ptr();
    launch(k::launch_scatter, prm, op);
    return out;
  }

  static at::Tensor scatter_backward(const at::Tensor& grad_in, const at::Tensor& slots_in,
                                     const Geometry& g) {
    const char* op = "lighthouse::_scatter_backward";
    const at::Tensor grad = grad_in.contiguous();    // [B, N, H, D]
    const at::Tensor slots = slots_in.contiguous();  // [B, H, S]
    const int64_t B = grad.size(0), H = grad.size(2), S = slots.size(2), D = grad.size(3);
    auto prm = stage_params<k::ScatterBackwardParams>(op, grad, "grad", B, H, 0, S, D, g);
    at::Tensor out = at::empty({B, H, S, D}, grad.options());  // [B, H, S, D]
    prm.grad = grad.data_ptr();
    prm.slots = slots.data_ptr<int64_t>();
    prm.out = out.data_ptr();
    launch(k::launch_scatter_backward, prm, op);
    return out;
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(lighthouse, CUDA, m) {
  register_stages<Cuda>(m);
  m.impl("_gather_backward_qkv", &Cuda::gather_backward_qkv);
  m.impl("_pool_score_qkv", &Cuda::pool_score_qkv);
}

}  // namespace lighthouse::ops
