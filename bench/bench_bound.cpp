#include "bench/bench_bound.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "lighthouse/lighthouse.h"
#include "train/device.h"

namespace lighthouse::cli {
namespace {

// Median seconds of `fn` over `repeats` runs after one warm-up, the device synchronized
// around each run.
template <typename Fn>
double median_seconds(const torch::Device& device, int repeats, Fn&& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    train::synchronize(device);
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    train::synchronize(device);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

DevicePeaks measure_peaks(const torch::Device& device, at::ScalarType dtype, int64_t heads,
                          int64_t head_dim, SdpaBackend backend) {
  torch::NoGradGuard outer;
  const bool cuda = device.is_cuda();
  const auto opts = torch::TensorOptions().dtype(dtype).device(device);
  DevicePeaks p;
  {
    const int64_t n = cuda ? 8192 : 512;
    const at::Tensor a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);  // [n, n]
    const double s = median_seconds(device, cuda ? 10 : 3, [&] { (void)at::mm(a, b); });
    p.gemm_tflops = 2.0 * n * n * n / s * 1e-12;
  }
  {
    const int64_t n = cuda ? 16384 : 512;
    torch::AutoGradMode grad(true);
    at::Tensor q = torch::randn({1, n, heads, head_dim}, opts).requires_grad_();  // [1, n, H, D]
    at::Tensor k = torch::randn({1, n, heads, head_dim}, opts).requires_grad_();
    at::Tensor v = torch::randn({1, n, heads, head_dim}, opts).requires_grad_();
    const at::Tensor dout = torch::randn({1, n, heads, head_dim}, opts);
    const double s = median_seconds(device, cuda ? 5 : 2, [&] {
      const at::Tensor o = dense_attention(q, k, v, backend);  // [1, n, H, D]
      o.backward(dout);
    });
    p.attention_tflops = 3.5 * model::causal_attention_fwd_flops(n, heads, head_dim) / s * 1e-12;
  }
  return p;
}

double lower_bound_s(const model::StepFlops& f, const DevicePeaks& p) {
  return f.gemm / (p.gemm_tflops * 1e12) +
         (f.attention + f.scorer) / (p.attention_tflops * 1e12);
}

double two_stage_speedup(int64_t total_steps, int64_t stage1_steps, double dense_step_s,
                         double lighthouse_step_s) {
  const double dense = static_cast<double>(total_steps) * dense_step_s;
  const double two_stage = static_cast<double>(stage1_steps) * lighthouse_step_s +
                           static_cast<double>(total_steps - stage1_steps) * dense_step_s;
  return dense / two_stage;
}

}  // namespace lighthouse::cli
