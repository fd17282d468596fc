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

constexpr int kL = 3;
using Kernel = void (*)(cuda::GatherBackwardParams, cuda::Lanes);
// <T, L, fused, H == Hx, rolled, blocks per SM, tokens per batch, streaming stores>
template <bool kSerial, int kMinBlocks, int kBatch, bool kStream>
constexpr Kernel form = cuda::gather_backward_kernel<Bf16, kL, true, true, kSerial, kMinBlocks,
                                                     kBatch, kStream>;

struct Candidate {
  const char* name;
  const char* form;
  Kernel kernel;
};

// The shipped form first (gather_scatter.cu: the template's defaults).
const std::vector<Candidate>& candidates() {
  static const std::vector<Candidate> list = {
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
  if (opt.levels != kL)
    throw std::invalid_argument("levels: the gather backward variants are built for L = 3, got " +
                                std::to_string(opt.levels));
  Timing tm;
  cudaStream_t stream = tm.stream;
  const CausalPlan plan = causal_plan(opt, 5 * opt.seed, stream);
  const Geometry& g = plan.geo;
  const int64_t H = opt.heads, D = opt.dim, N = opt.n;
  const size_t x_bytes = static_cast<size_t>(N * H * D) * sizeof(Bf16);
  const size_t s_bytes = static_cast<size_t>(g.S * H * D) * sizeof(Bf16);

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
  auto launch = [&](Kernel kernel, const cuda::GatherBackwardParams& p, const char* name) {
    kernel<<<grid, cuda::kThreads, 0, stream>>>(p, ln);
    check(cudaGetLastError(), name);
  };

  const auto& cands = candidates();
  poison(ref.all(), stream);
  launch(cands[0].kernel, params_for(ref), "base");
  Buffer count(sizeof(unsigned long long));
  for (const Candidate& c : cands) {
    VariantRow row;
    row.name = c.name;
    row.form = c.form;
    describe(row, c.kernel, 0);
    row.bitwise = bitwise_equal_after([&] { launch(c.kernel, params_for(out), c.name); },
                                      ref.all(), out.all(), count, stream);
    rep.rows.push_back(row);
  }

  const cuda::GatherBackwardParams timed_prm = params_for(out);
  std::vector<std::function<void()>> launches;
  for (const Candidate& c : cands)
    launches.push_back([&, kernel = c.kernel, name = c.name] { launch(kernel, timed_prm, name); });
  time_in_alternation(opt, tm, launches, [&] {
    check(cudaMemcpyAsync(out.dq.ptr, q.ptr, x_bytes, cudaMemcpyDeviceToDevice, stream),
          "cudaMemcpyAsync");
  }, rep);
  return rep;
}

}  // namespace lighthouse::bench
