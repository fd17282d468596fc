// Variants of the pool + score kernel (src/cuda/pool_score.cuh) for the tuning harness: rows per
// batch, whole-window loads, and blocks per SM asked of ptxas, each against the shipped form.
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/kernel_variants.h"
#include "bench/variant_common.cuh"
#include "cuda/pool_score.cuh"
#include "lighthouse/geometry.h"

namespace lighthouse::bench {
namespace {

using cuda::PoolScoreKernel;
using cuda::pool_score_kernel;
using cuda::pool_score_kernel_min;

// The shipped form first (pool_score.cu: pool_score_kernel<T, 4, 0>).
const std::vector<Candidate<PoolScoreKernel>>& candidates() {
  static const std::vector<Candidate<PoolScoreKernel>> list = {
      {"base", "batches of 4 rows, default registers", pool_score_kernel<Bf16, 4, 0>},
      {"b2", "batches of 2 rows", pool_score_kernel<Bf16, 2, 0>},
      {"b4m3", "batches of 4, 3 blocks/SM", pool_score_kernel_min<Bf16, 4, 0, 3>},
      {"b2m4", "batches of 2, 4 blocks/SM", pool_score_kernel_min<Bf16, 2, 0, 4>},
      {"b1m4", "batches of 1, 4 blocks/SM", pool_score_kernel_min<Bf16, 1, 0, 4>},
      {"w4", "4 rows loaded at once, none ahead", pool_score_kernel<Bf16, 4, 4>},
      {"w8", "8 rows loaded at once", pool_score_kernel<Bf16, 4, 8>},
      {"w8m3", "8 rows at once, 3 blocks/SM", pool_score_kernel_min<Bf16, 4, 8, 3>},
      {"w16", "16 rows loaded at once", pool_score_kernel<Bf16, 4, 16>},
      {"w16m2", "16 rows at once, 2 blocks/SM", pool_score_kernel_min<Bf16, 4, 16, 2>},
  };
  return list;
}

struct Outputs {
  Buffer pyr_q, pyr_k, pyr_v, sq, sk;
  Outputs(size_t pyr_bytes, size_t score_bytes)
      : pyr_q(pyr_bytes), pyr_k(pyr_bytes), pyr_v(pyr_bytes), sq(score_bytes), sk(score_bytes) {}
  std::vector<const Buffer*> all() const { return {&pyr_q, &pyr_k, &pyr_v, &sq, &sk}; }
};

}  // namespace

VariantReport run_pool_score_variants(const VariantOptions& opt) {
  check_dim(opt);
  if (opt.levels < 2 || opt.pool < 2 || (opt.pool & (opt.pool - 1)) != 0)
    throw std::invalid_argument("levels >= 2 and pool a power of two >= 2 expected");
  const Geometry g = level_geometry(opt.levels, opt.pool, opt.n);
  if (g.Nc < 1)
    throw std::invalid_argument("n: expected at least pool^(levels-1) = " +
                                std::to_string(g.window[g.c]) + " positions");
  const int64_t H = opt.heads, D = opt.dim, N = opt.n;
  const size_t x_bytes = static_cast<size_t>(N * H * D) * sizeof(Bf16);
  const size_t pyr_bytes = static_cast<size_t>(g.P1 * H * D) * sizeof(Bf16);
  const size_t score_bytes = static_cast<size_t>(H * g.P) * sizeof(float);

  VariantReport rep;
  rep.stage = "pool_score";
  rep.n = N;
  // q, k and v read, their pyramids written, the scores of q and k written
  rep.bytes =
      3.0 * static_cast<double>(x_bytes + pyr_bytes) + 2.0 * static_cast<double>(score_bytes);
  rep.copy_bytes = 2.0 * static_cast<double>(x_bytes);

  Timing tm;
  cudaStream_t stream = tm.stream;
  Buffer q(x_bytes), k(x_bytes), v(x_bytes), copy_dst(x_bytes);
  fill_random(q, 3 * opt.seed, stream);
  fill_random(k, 3 * opt.seed + 1, stream);
  fill_random(v, 3 * opt.seed + 2, stream);

  cuda::PoolScoreParams prm;
  prm.dtype = cuda::DType::BFloat16;
  prm.B = 1;
  prm.H = H;
  prm.Hx = H;
  prm.D = D;
  prm.geo = g;
  prm.parts = 3;
  auto params_for = [&](const Outputs& out) {
    cuda::PoolScoreParams p = prm;
    p.part[0] = {q.ptr, out.pyr_q.ptr, static_cast<float*>(out.sq.ptr), H};
    p.part[1] = {k.ptr, out.pyr_k.ptr, static_cast<float*>(out.sk.ptr), H};
    p.part[2] = {v.ptr, out.pyr_v.ptr, nullptr, H};
    return p;
  };
  Outputs ref(pyr_bytes, score_bytes), out(pyr_bytes, score_bytes);
  // check_and_time poisons refs and outs alike, so the entries no variant writes (a ragged
  // tail's level-0 scores, the tail kernel's) compare equal.
  const size_t smem = static_cast<size_t>(g.c - 1) * (cuda::kPack + 1) * cuda::kThreads * 4;
  const cuda::PoolScoreParams to_ref = params_for(ref), to_out = params_for(out);
  check_and_time<PoolScoreKernel>(
      candidates(), smem,
      [&](PoolScoreKernel kernel, bool into_refs) {
        check(cuda::launch_pool_score_body(kernel, into_refs ? to_ref : to_out, stream),
              "pool_score_kernel");
      },
      ref.all(), out.all(),
      [&] {
        check(cudaMemcpyAsync(copy_dst.ptr, q.ptr, x_bytes, cudaMemcpyDeviceToDevice, stream),
              "cudaMemcpyAsync");
      },
      opt, tm, rep);
  return rep;
}

}  // namespace lighthouse::bench
