// Variants of the fused gather backward (src/cuda/gather_scatter.cuh) for the tuning harness:
// blocks per SM asked of ptxas, tokens per batch, streaming or plain stores, the rolled loop over
// q, k and v or the unrolled form, each against the shipped form (bf16, H == Hx, L 3).
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/kernel_variants.h"
#include "bench/variant_common.cuh"
#include "cuda/gather_scatter.cuh"

namespace lighthouse::bench {
namespace {

constexpr int kL = 3;  // plan_geometry checks opt.levels
using Kernel = void (*)(cuda::GatherBackwardParams, cuda::Lanes);
// <T, L, fused, H == Hx, rolled, blocks per SM, tokens per batch, streaming stores>
template <bool kSerial, int kMinBlocks, int kBatch, bool kStream>
constexpr Kernel form = cuda::gather_backward_kernel<Bf16, kL, true, true, kSerial, kMinBlocks,
                                                     kBatch, kStream>;

// The shipped form first (gather_scatter.cu: the template's defaults).
const std::vector<Candidate<Kernel>>& candidates() {
  static const std::vector<Candidate<Kernel>> list = {
      {"base", "rolled q, k, v, 3 blocks/SM, 4 tokens, streaming",
       cuda::gather_backward_kernel<Bf16, kL, true, true>},
      {"r2", "rolled, 2 blocks/SM", form<true, 2, 4, true>},
      {"r4", "rolled, 4 blocks/SM", form<true, 4, 4, true>},
      {"r3plain", "rolled, 3 blocks/SM, plain stores", form<true, 3, 4, false>},
      {"r4b2", "rolled, 4 blocks/SM, 2 tokens", form<true, 4, 2, true>},
      {"r3b2", "rolled, 3 blocks/SM, 2 tokens", form<true, 3, 2, true>},
      {"u2", "unrolled (the form before v9), 2 blocks/SM", form<false, 2, 4, true>},
  };
  return list;
}

}  // namespace

VariantReport run_gather_backward_variants(const VariantOptions& opt) {
  const Geometry g = plan_geometry(opt, "gather backward");
  Timing tm;
  cudaStream_t stream = tm.stream;
  const CausalPlan plan = causal_plan(opt, g, 5 * opt.seed, stream);
  const size_t x_bytes = plan.x_bytes, s_bytes = plan.s_bytes;
  const int64_t H = opt.heads, D = opt.dim, N = opt.n;

  VariantReport rep;
  rep.stage = "gather_backward";
  rep.n = N;
  // three [N, H, D] written, three [H, S, D] and the inverse tables read
  rep.bytes = 3.0 * static_cast<double>(x_bytes + s_bytes) +
              static_cast<double>(H * g.P) * sizeof(int64_t);
  rep.copy_bytes = 2.0 * static_cast<double>(x_bytes);

  Buffer q(x_bytes);  // the copy's source
  fill_random(q, 5 * opt.seed + 1, stream);
  Buffer gq(s_bytes), gk(s_bytes), gv(s_bytes);
  fill_random(gq, 5 * opt.seed + 2, stream);
  fill_random(gk, 5 * opt.seed + 3, stream);
  fill_random(gv, 5 * opt.seed + 4, stream);
  struct Outputs {
    Buffer dq, dk, dv;
    explicit Outputs(size_t n) : dq(n), dk(n), dv(n) {}
    std::vector<const Buffer*> all() const { return {&dq, &dk, &dv}; }
  };
  Outputs ref(x_bytes), out(x_bytes);
  cuda::GatherBackwardParams prm;
  prm.dtype = cuda::DType::BFloat16;
  prm.B = 1;
  prm.H = prm.Hx = H;
  prm.S = g.S;
  prm.D = D;
  prm.geo = g;
  prm.inverse = static_cast<const int64_t*>(plan.inverse->ptr);
  prm.grad_q = gq.ptr;
  prm.grad = gk.ptr;
  prm.grad2 = gv.ptr;
  auto params_for = [&](const Outputs& o) {
    cuda::GatherBackwardParams p = prm;
    p.dq = o.dq.ptr;
    p.dx = o.dk.ptr;
    p.dx2 = o.dv.ptr;
    return p;
  };
  const cuda::Lanes ln = cuda::lanes_for(D);
  const int64_t windows = (N + g.p - 1) >> g.log2p;
  const dim3 grid = cuda::grid3(windows * H, ln, 1, 1);
  const cuda::GatherBackwardParams to_ref = params_for(ref), to_out = params_for(out);
  check_and_time<Kernel>(
      candidates(), 0,
      [&](Kernel kernel, bool into_refs) {
        kernel<<<grid, cuda::kThreads, 0, stream>>>(into_refs ? to_ref : to_out, ln);
        check(cudaGetLastError(), "gather_backward_kernel");
      },
      ref.all(), out.all(),
      [&] {
        check(cudaMemcpyAsync(out.dq.ptr, q.ptr, x_bytes, cudaMemcpyDeviceToDevice, stream),
              "cudaMemcpyAsync");
      },
      opt, tm, rep);
  return rep;
}

}  // namespace lighthouse::bench
