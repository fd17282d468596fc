// The fused elementwise kernels' launches (fused.h): argument checks naming the argument,
// contiguous inputs, outputs allocated here, a device guard and the current stream, and one
// torch-free launcher call (src/cuda/fused.h) each.
#include "ops/fused.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda/fused.h"

namespace lighthouse::ops {
namespace {

namespace k = lighthouse::cuda;

bool float_type(at::ScalarType st) {
  return st == at::kFloat || st == at::kHalf || st == at::kBFloat16;
}

k::DType kernel_dtype(at::ScalarType st, const char* op, const char* name) {
  TORCH_CHECK_TYPE(float_type(st), op, ": CUDA ", name,
                   " must be float32, float16 or bfloat16, got ", st);
  return st == at::kFloat ? k::DType::Float32
                          : (st == at::kHalf ? k::DType::Float16 : k::DType::BFloat16);
}

void check_cuda(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.defined() && t.is_cuda(), op, ": ", name, " must be a CUDA tensor");
}

void check_same(const at::Tensor& a, const at::Tensor& b, const char* op, const char* name) {
  check_cuda(b, op, name);
  TORCH_CHECK_VALUE(a.sizes() == b.sizes(), op, ": ", name, " must have sizes ", a.sizes(),
                    ", got ", b.sizes());
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), op, ": ", name, " must be ",
                   a.scalar_type(), ", got ", b.scalar_type());
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

bool aligned16(const at::Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
}

// t contiguous and 16-byte aligned (the norm kernels' packs need both): a copy if it is not.
at::Tensor packed(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return aligned16(c) ? c : c.clone();
}

}  // namespace

at::Tensor swiglu_cuda(const at::Tensor& g_in, const at::Tensor& u_in) {
  const char* op = "swiglu";
  check_cuda(g_in, op, "g");
  check_same(g_in, u_in, op, "u");
  const c10::cuda::CUDAGuard guard(g_in.device());
  const at::Tensor g = g_in.contiguous(), u = u_in.contiguous();  // [...]
  at::Tensor y = at::empty_like(g, at::MemoryFormat::Contiguous);  // [...]
  k::SwigluParams prm;
  prm.dtype = kernel_dtype(g.scalar_type(), op, "g");
  prm.g = g.data_ptr();
  prm.u = u.data_ptr();
  prm.y = y.data_ptr();
  prm.n = g.numel();
  check_launch(k::launch_swiglu_forward(prm, at::cuda::getCurrentCUDAStream()), op);
  return y;
}

std::tuple<at::Tensor, at::Tensor> swiglu_backward_cuda(const at::Tensor& dy_in,
                                                        const at::Tensor& g_in,
                                                        const at::Tensor& u_in) {
  const char* op = "swiglu_backward";
  check_cuda(g_in, op, "g");
  check_same(g_in, u_in, op, "u");
  check_same(g_in, dy_in, op, "dy");
  const c10::cuda::CUDAGuard guard(g_in.device());
  const at::Tensor g = g_in.contiguous(), u = u_in.contiguous(), dy = dy_in.contiguous();
  at::Tensor dg = at::empty_like(g, at::MemoryFormat::Contiguous);  // [...]
  at::Tensor du = at::empty_like(g, at::MemoryFormat::Contiguous);  // [...]
  k::SwigluParams prm;
  prm.dtype = kernel_dtype(g.scalar_type(), op, "g");
  prm.g = g.data_ptr();
  prm.u = u.data_ptr();
  prm.dy = dy.data_ptr();
  prm.dg = dg.data_ptr();
  prm.du = du.data_ptr();
  prm.n = g.numel();
  check_launch(k::launch_swiglu_backward(prm, at::cuda::getCurrentCUDAStream()), op);
  return {dg, du};
}

at::Tensor rope_cuda(const at::Tensor& x_in, const at::Tensor& cos_in, const at::Tensor& sin_in,
                     bool adjoint) {
  const char* op = adjoint ? "rope_backward" : "rope";
  check_cuda(x_in, op, "x");
  TORCH_CHECK_VALUE(x_in.dim() == 4, op, ": x must be [B, N, H, D], got ", x_in.sizes());
  const int64_t B = x_in.size(0), N = x_in.size(1), H = x_in.size(2), D = x_in.size(3);
  TORCH_CHECK_VALUE(D % 2 == 0, op, ": head dim D must be even, got ", D);
  check_cuda(cos_in, op, "cos");
  TORCH_CHECK_VALUE(cos_in.sizes() == at::IntArrayRef({N, 1, D}), op, ": cos must be [N, 1, D] = [",
                    N, ", 1, ", D, "], got ", cos_in.sizes());
  check_same(cos_in, sin_in, op, "sin");
  TORCH_CHECK_TYPE(cos_in.scalar_type() == x_in.scalar_type(), op, ": cos must be x's ",
                   x_in.scalar_type(), ", got ", cos_in.scalar_type());
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.stride(3) == 1 ? x_in : x_in.contiguous();  // [B, N, H, D]
  const at::Tensor cos = cos_in.contiguous(), sin = sin_in.contiguous();  // [N, 1, D]
  at::Tensor y = at::empty({B, N, H, D}, x.options());                  // [B, N, H, D]
  k::RopeParams prm;
  prm.dtype = kernel_dtype(x.scalar_type(), op, "x");
  prm.x = x.data_ptr();
  prm.cos = cos.data_ptr();
  prm.sin = sin.data_ptr();
  prm.y = y.data_ptr();
  prm.B = B;
  prm.N = N;
  prm.H = H;
  prm.D = D;
  prm.sb = x.stride(0);
  prm.sn = x.stride(1);
  prm.sh = x.stride(2);
  prm.adjoint = adjoint;
  check_launch(k::launch_rope(prm, at::cuda::getCurrentCUDAStream()), op);
  return y;
}

bool add_rms_norm_cuda_supports(const at::Tensor& x, const at::Tensor& r,
                                const at::Tensor& weight, at::ScalarType out) {
  if (!x.is_cuda() || !r.is_cuda() || !weight.is_cuda() || x.dim() == 0) return false;
  const int64_t C = x.size(-1);
  return float_type(x.scalar_type()) && float_type(weight.scalar_type()) && r.scalar_type() == out &&
         float_type(out) && at::promote_types(x.scalar_type(), r.scalar_type()) == x.scalar_type() &&
         x.sizes() == r.sizes() && weight.dim() == 1 && weight.size(0) == C && C % 8 == 0 &&
         C <= k::kMaxNormCols;
}

std::tuple<at::Tensor, at::Tensor> add_rms_norm_cuda(const at::Tensor& x_in, const at::Tensor& r_in,
                                                     const at::Tensor& weight_in, double eps,
                                                     at::ScalarType out) {
  const char* op = "add_rms_norm";
  TORCH_CHECK_VALUE(add_rms_norm_cuda_supports(x_in, r_in, weight_in, out), op,
                    ": CUDA x, r [..., C] and weight [C] must be float tensors with r of the "
                    "output dtype, C % 8 == 0 and C <= ", k::kMaxNormCols, ", got x ",
                    x_in.sizes(), " ", x_in.scalar_type(), ", r ", r_in.sizes(), " ",
                    r_in.scalar_type(), ", weight ", weight_in.sizes(), ", output ", out);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = packed(x_in), r = packed(r_in);                      // [..., C]
  const at::Tensor w = packed(weight_in.to(at::kFloat));                    // [C]
  at::Tensor h = at::empty(x.sizes(), x.options());                         // [..., C]
  at::Tensor y = at::empty(x.sizes(), x.options().dtype(out));              // [..., C]
  k::AddRmsNormParams prm;
  prm.dtype = kernel_dtype(x.scalar_type(), op, "x");
  prm.low = kernel_dtype(out, op, "r");
  prm.x = x.data_ptr();
  prm.r = r.data_ptr();
  prm.weight = w.data_ptr<float>();
  prm.h = h.data_ptr();
  prm.y = y.data_ptr();
  prm.cols = x.size(-1);
  prm.rows = x.numel() / prm.cols;
  prm.eps = static_cast<float>(eps);
  check_launch(k::launch_add_rms_norm(prm, at::cuda::getCurrentCUDAStream()), op);
  return {h, y};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> add_rms_norm_backward_cuda(
    const at::Tensor& h_in, const at::Tensor& weight_in, const at::Tensor& gy_in,
    const at::Tensor& gh_in, double eps, at::ScalarType r_dtype) {
  const char* op = "add_rms_norm_backward";
  TORCH_CHECK_VALUE(add_rms_norm_cuda_supports(h_in, gy_in, weight_in, gy_in.scalar_type()) &&
                        r_dtype == gy_in.scalar_type(),
                    op, ": CUDA h, gy [..., C] and weight [C] as add_rms_norm takes, got h ",
                    h_in.sizes(), " ", h_in.scalar_type(), ", gy ", gy_in.sizes(), " ",
                    gy_in.scalar_type(), ", weight ", weight_in.sizes(), ", r dtype ", r_dtype);
  if (gh_in.defined()) check_same(h_in, gh_in, op, "gh");
  const c10::cuda::CUDAGuard guard(h_in.device());
  const at::Tensor h = packed(h_in), gy = packed(gy_in);                     // [..., C]
  const at::Tensor gh = gh_in.defined() ? packed(gh_in) : at::Tensor();       // [..., C]
  const at::Tensor w = packed(weight_in.to(at::kFloat));                      // [C]
  const int64_t C = h.size(-1), rows = h.numel() / C;
  at::Tensor dx = at::empty(h.sizes(), h.options());                          // [..., C]
  at::Tensor dr = at::empty(h.sizes(), h.options().dtype(r_dtype));           // [..., C]
  at::Tensor partial = at::empty({k::add_rms_norm_backward_blocks(rows), C},
                                 h.options().dtype(at::kFloat));              // [blocks, C]
  k::AddRmsNormBackwardParams prm;
  prm.dtype = kernel_dtype(h.scalar_type(), op, "h");
  prm.low = kernel_dtype(r_dtype, op, "gy");
  prm.h = h.data_ptr();
  prm.weight = w.data_ptr<float>();
  prm.gy = gy.data_ptr();
  prm.gh = gh.defined() ? gh.data_ptr() : nullptr;
  prm.dx = dx.data_ptr();
  prm.dr = dr.data_ptr();
  prm.dw_partial = partial.data_ptr<float>();
  prm.rows = rows;
  prm.cols = C;
  prm.eps = static_cast<float>(eps);
  check_launch(k::launch_add_rms_norm_backward(prm, at::cuda::getCurrentCUDAStream()), op);
  at::Tensor dw = partial.sum(0).to(weight_in.scalar_type());                  // [C]
  return {dx, dr, dw};
}

}  // namespace lighthouse::ops
