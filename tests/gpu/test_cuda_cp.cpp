// Ring attention and the context-parallel op on CUDA over NCCL (one thread per
// GPU): equal to SDPA and the single-GPU op, and (LIGHTHOUSE_CP_BENCH=1) the
// ring's cost per rank at long context, Lighthouse vs dense, printed for
// docs/gpu.md.
#include <c10/cuda/CUDAGuard.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "dist/context_parallel.h"
#include "dist/cp_layout.h"
#include "dist/ranks.h"
#include "dist/ring_attention.h"
#include "support/tolerance.h"

namespace lighthouse::dist {
namespace {

#define SKIP_WITHOUT_GPUS(n)                                             \
  if (!torch::cuda::is_available() || torch::cuda::device_count() < (n)) \
  GTEST_SKIP() << "needs " << (n) << " CUDA devices"

at::Tensor dense_ref(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v) {
  return at::scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                          {}, 0.0, true)
      .transpose(1, 2);
}

// Ring attention over `W` GPUs in `dtype` against fp64 CPU SDPA: output and q,
// k, v gradients, to the dtype's tolerance (support/tolerance.h).
void check_ring(int W, at::ScalarType dtype) {
  const double tol = test::tolerance(dtype);
  at::manual_seed(5);
  const int64_t B = 1, N = 2 * W * 256, H = 4, D = 64;
  const at::Tensor q = torch::randn({B, N, H, D}, at::kDouble),
                   k = torch::randn({B, N, H, D}, at::kDouble),
                   v = torch::randn({B, N, H, D}, at::kDouble),
                   dout = torch::randn({B, N, H, D}, at::kDouble);
  const at::Tensor qr = q.clone().requires_grad_(), kr = k.clone().requires_grad_(),
                   vr = v.clone().requires_grad_();
  const at::Tensor ref = dense_ref(qr, kr, vr);
  ref.backward(dout);
  std::vector<at::Tensor> o(W), dq(W), dk(W), dv(W);
  run_ranks(
      W,
      [&](Group &g) {
        const int r = g.rank();
        c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(r));
        const auto on = [&](const at::Tensor &x) {
          return cp_shard(x, 1, r, W).to(torch::Device(torch::kCUDA, r), dtype).requires_grad_();
        };
        at::Tensor ql = on(q), kl = on(k), vl = on(v);
        at::Tensor ol = ring_dense_attention(g, ql, kl, vl);
        ol.backward(cp_shard(dout, 1, r, W).to(ol.device(), dtype));
        o[r] = ol.detach().cpu().to(at::kDouble);
        dq[r] = ql.grad().cpu().to(at::kDouble);
        dk[r] = kl.grad().cpu().to(at::kDouble);
        dv[r] = vl.grad().cpu().to(at::kDouble);
      },
      true);
  EXPECT_LE(rel_err(cp_unshard(o, 1), ref.detach()), tol) << "output";
  EXPECT_LE(rel_err(cp_unshard(dq, 1), qr.grad()), tol) << "dq";
  EXPECT_LE(rel_err(cp_unshard(dk, 1), kr.grad()), tol) << "dk";
  EXPECT_LE(rel_err(cp_unshard(dv, 1), vr.grad()), tol) << "dv";
}

TEST(CudaRingAttention, OneGpuMatchesSdpa) {
  SKIP_WITHOUT_GPUS(1);
  check_ring(1, at::kFloat);
  check_ring(1, at::kBFloat16);
}

TEST(CudaRingAttention, TwoGpusMatchSdpa) {
  SKIP_WITHOUT_GPUS(2);
  check_ring(2, at::kFloat);
  check_ring(2, at::kBFloat16);
}

// The CP op over 2 GPUs (fp32) against the single-GPU op on the same inputs, with the default
// causal selection (the halo passed over NCCL send/recv, SPEC.md §10): output, dq, and every
// chunk's slot table equal to its slice of the single-GPU plan.
TEST(CudaContextParallel, TwoGpusEqualTheSingleGpuOp) {
  SKIP_WITHOUT_GPUS(2);
  Config cfg;
  cfg.levels = 3;
  cfg.pool = 4;
  cfg.topk = 512;
  cfg.tile_topk = 128;  // 4 tiles: one per chunk
  const int W = 2;
  const int64_t B = 1, N = 4 * 128 * 16, H = 4, Hkv = 2, D = 64;
  at::manual_seed(6);
  const auto cu = torch::Device(torch::kCUDA, 0);
  const at::Tensor q = torch::randn({B, N, H, D}, cu), k = torch::randn({B, N, Hkv, D}, cu),
                   v = torch::randn({B, N, Hkv, D}, cu), dout = torch::randn({B, N, H, D}, cu);
  const at::Tensor qr = q.clone().requires_grad_(), kr = k.clone().requires_grad_(),
                   vr = v.clone().requires_grad_();
  const at::Tensor ref = attention(qr, kr, vr, cfg);
  ref.backward(dout);
  const at::Tensor whole = plan(q, k, cfg).slots.cpu();  // [B, H, S]
  const int64_t n = N / (2 * W), Sc = whole.size(2) / (2 * W);
  std::vector<at::Tensor> o(W), dq(W), slots(W);
  run_ranks(
      W,
      [&](Group &g) {
        const int r = g.rank();
        c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(r));
        const auto dev = torch::Device(torch::kCUDA, r);
        at::Tensor ql = cp_shard(q, 1, r, W).to(dev).requires_grad_();
        Plan local;
        at::Tensor ol = cp_attention(g, ql, cp_shard(k, 1, r, W).to(dev),
                                     cp_shard(v, 1, r, W).to(dev), cfg, &local);
        ol.backward(cp_shard(dout, 1, r, W).to(dev));
        o[r] = ol.detach().cpu();
        dq[r] = ql.grad().cpu();
        slots[r] = local.slots.cpu();  // [2B, H, Sc]
      },
      true);
  EXPECT_LE(rel_err(cp_unshard(o, 1), ref.detach().cpu()), 1e-4);
  EXPECT_LE(rel_err(cp_unshard(dq, 1), qr.grad().cpu()), 1e-4);
  for (int r = 0; r < W; ++r)
    for (int half = 0; half < 2; ++half) {
      const int64_t c = cp_chunk(r, W, half);
      const at::Tensor mine = global_slots(slots[r].narrow(0, half * B, B), c, n, W, cfg);
      EXPECT_TRUE(torch::equal(mine, whole.narrow(2, c * Sc, Sc))) << "slots of chunk " << c;
    }
}

// Forward + backward milliseconds of one rank's CP step (median of 5 after 2
// warm-ups), 2 GPUs, B=1 H=8 D=128 bf16, L=3 p=4 k=2048 m=128, against the same
// on one GPU at the same N.
double time_ms(const std::function<void()> &f) {
  std::vector<double> t;
  for (int i = 0; i < 7; ++i) {
    torch::cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    torch::cuda::synchronize();
    t.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin() + 2, t.end());
  return t[2 + 2];
}

TEST(CudaContextParallel, RingOverheadTable) {
  SKIP_WITHOUT_GPUS(2);
  if (!std::getenv("LIGHTHOUSE_CP_BENCH")) GTEST_SKIP() << "set LIGHTHOUSE_CP_BENCH=1";
  Config cfg;  // L=3 p=4 k=2048 m=128: 16 tiles, 4 per chunk
  const int W = 2;
  for (const int64_t N : {int64_t{262144}, int64_t{524288}}) {
    const int64_t H = 8, D = 128;
    const auto opts = torch::TensorOptions().dtype(at::kBFloat16).device(torch::kCUDA, 0);
    at::Tensor q = torch::randn({1, N, H, D}, opts).requires_grad_(),
               k = torch::randn({1, N, H, D}, opts).requires_grad_(),
               v = torch::randn({1, N, H, D}, opts).requires_grad_();
    const at::Tensor dout = torch::randn({1, N, H, D}, opts);
    const double one_lh = time_ms([&] { attention(q, k, v, cfg).backward(dout); });
    const double one_dense = time_ms([&] { dense_attention(q, k, v).backward(dout); });
    std::vector<double> cp_lh(W), cp_dense(W);
    run_ranks(
        W,
        [&](Group &g) {
          const int r = g.rank();
          c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(r));
          const auto dev = torch::Device(torch::kCUDA, r);
          at::Tensor ql = cp_shard(q.detach(), 1, r, W).to(dev).requires_grad_(),
                     kl = cp_shard(k.detach(), 1, r, W).to(dev).requires_grad_(),
                     vl = cp_shard(v.detach(), 1, r, W).to(dev).requires_grad_();
          const at::Tensor dl = cp_shard(dout, 1, r, W).to(dev);
          cp_lh[r] = time_ms([&] { cp_attention(g, ql, kl, vl, cfg).backward(dl); });
          cp_dense[r] = time_ms([&] { ring_dense_attention(g, ql, kl, vl).backward(dl); });
        },
        true);
    for (int r = 0; r < W; ++r)
      std::printf(
          "N=%lld rank %d: lighthouse 1 GPU %.1f ms, CP=2 %.1f ms (ideal %.1f, "
          "overhead %.0f%%); "
          "dense 1 GPU %.1f ms, CP=2 %.1f ms (ideal %.1f, overhead %.0f%%); "
          "LH/SDPA speedup 1 GPU %.2fx, CP=2 %.2fx\n",
          static_cast<long long>(N), r, one_lh, cp_lh[r], one_lh / W,
          100.0 * (cp_lh[r] / (one_lh / W) - 1), one_dense, cp_dense[r], one_dense / W,
          100.0 * (cp_dense[r] / (one_dense / W) - 1), one_dense / one_lh, cp_dense[r] / cp_lh[r]);
  }
}

}  // namespace
}  // namespace lighthouse::dist
