// Variants of the scatter (src/cuda/gather_scatter.cuh) for the tuning harness: level-0 slots
// per batch, blocks per SM asked of ptxas, streaming stores, each against the shipped form
// (bf16, L 3), on the plan the shipped pool + score and causal select make.
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
using Kernel = void (*)(cuda::ScatterParams, cuda::Lanes);
// <T, L, level-0 slots per batch, streaming stores, blocks per SM>
template <int kBatch, bool kStream, int kMinBlocks>
constexpr Kernel form = cuda::scatter_kernel_min<Bf16, kL, kBatch, kStream, kMinBlocks>;

// The shipped form first (gather_scatter.cu: the template's defaults).
const std::vector<Candidate<Kernel>>& candidates() {
  static const std::vector<Candidate<Kernel>> list = {
      {"base", "2 slots per batch, default registers", cuda::scatter_kernel<Bf16, kL>},
      {"b1", "1 slot per batch", cuda::scatter_kernel<Bf16, kL, 1>},
      {"b4", "4 slots per batch", cuda::scatter_kernel<Bf16, kL, 4>},
      {"b2s", "2 slots, streaming stores", cuda::scatter_kernel<Bf16, kL, 2, true>},
      {"b2m5", "2 slots, 5 blocks/SM", form<2, false, 5>},
      {"b2m6", "2 slots, 6 blocks/SM", form<2, false, 6>},
      {"b1m6", "1 slot, 6 blocks/SM", form<1, false, 6>},
      {"b4m4", "4 slots, 4 blocks/SM", form<4, false, 4>},
  };
  return list;
}

}  // namespace

VariantReport run_scatter_variants(const VariantOptions& opt) {
  const Geometry g = plan_geometry(opt, "scatter");
  Timing tm;
  cudaStream_t stream = tm.stream;
  const CausalPlan plan = causal_plan(opt, g, 3 * opt.seed, stream);
  const size_t x_bytes = plan.x_bytes, s_bytes = plan.s_bytes;
  const int64_t H = opt.heads, D = opt.dim, N = opt.n;

  VariantReport rep;
  rep.stage = "scatter";
  rep.n = N;
  // [N, H, D] written, [H, S, D] and the inverse tables' levels read
  rep.bytes = static_cast<double>(x_bytes + s_bytes) +
              static_cast<double>(H * g.P) * sizeof(int64_t);
  rep.copy_bytes = 2.0 * static_cast<double>(x_bytes);

  Buffer o_tilde(s_bytes), copy_src(x_bytes), ref(x_bytes), out(x_bytes);
  fill_random(o_tilde, 3 * opt.seed + 2, stream);
  fill_random(copy_src, 3 * opt.seed + 3, stream);
  cuda::ScatterParams prm;
  prm.dtype = cuda::DType::BFloat16;
  prm.B = 1;
  prm.H = prm.Hx = H;
  prm.S = g.S;
  prm.D = D;
  prm.geo = g;
  prm.o_tilde = o_tilde.ptr;
  prm.inverse = static_cast<const int64_t*>(plan.inverse->ptr);
  auto params_for = [&](const Buffer& o) {
    cuda::ScatterParams p = prm;
    p.out = o.ptr;
    return p;
  };
  const cuda::Lanes ln = cuda::lanes_for(D);
  const dim3 grid = cuda::grid3(((N >> g.log2p) + 1) * H, ln, 1, 1);
  const cuda::ScatterParams to_ref = params_for(ref), to_out = params_for(out);
  check_and_time<Kernel>(
      candidates(), 0,
      [&](Kernel kernel, bool into_refs) {
        kernel<<<grid, cuda::kThreads, 0, stream>>>(into_refs ? to_ref : to_out, ln);
        check(cudaGetLastError(), "scatter_kernel");
      },
      {&ref}, {&out},
      [&] {
        check(cudaMemcpyAsync(ref.ptr, copy_src.ptr, x_bytes, cudaMemcpyDeviceToDevice, stream),
              "cudaMemcpyAsync");
      },
      opt, tm, rep);
  return rep;
}

}  // namespace lighthouse::bench
