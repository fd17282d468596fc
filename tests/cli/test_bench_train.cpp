// The parts of `lighthouse bench train` that are arithmetic: kernel categories and per-step sums
// of a profile, the two-stage speedup and the compute lower bound.
#include <gtest/gtest.h>

#include "bench/bench_bound.h"
#include "bench/bench_profile.h"

namespace lighthouse::cli {
namespace {

TEST(BenchProfile, KernelCategoriesByName) {
  EXPECT_EQ(kernel_category("nvjet_tst_128x256_64x4_2x1_v_bz_coopB_NNT"), "gemm");
  EXPECT_EQ(kernel_category("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64"), "gemm");
  EXPECT_EQ(kernel_category("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3"),
            "attention (SDPA)");
  EXPECT_EQ(kernel_category("void pytorch_flash::flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<>()"),
            "attention (SDPA)");
  EXPECT_EQ(kernel_category("void lighthouse::cuda::(anonymous namespace)::gather_kernel(Params)"),
            "lighthouse op");
  EXPECT_EQ(kernel_category("void lighthouse::cuda::(anonymous namespace)::swiglu_kernel<>()"),
            "lighthouse fused layers");
  EXPECT_EQ(kernel_category("void at::native::(anonymous namespace)::multi_tensor_apply_kernel"),
            "optimizer");
  EXPECT_EQ(kernel_category("void at::native::vectorized_elementwise_kernel<4, CUDAFunctor_add>"),
            "elementwise");
  EXPECT_EQ(kernel_category("void at::native::reduce_kernel<512, 1>"), "reduction");
  EXPECT_EQ(kernel_category("Memcpy DtoD (Device -> Device)"), "copy / cast");
  EXPECT_EQ(kernel_category("void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_"
                            "impl_nocast<at::native::addcmul_cuda_kernel(...)>"),
            "elementwise");
  EXPECT_EQ(kernel_category("void at::native::unrolled_elementwise_kernel<at::native::CUDAFunctor_"
                            "add<float>, 4, at::native::memory::LoadWithCast<2>>"),
            "elementwise");
  EXPECT_EQ(kernel_category("void at::native::unrolled_elementwise_kernel<at::native::direct_copy_"
                            "kernel_cuda(at::TensorIteratorBase&)>"),
            "copy / cast");
  EXPECT_EQ(kernel_category("something_else"), "other");
}

TEST(BenchProfile, SumsPerStepByNameAndCategory) {
  const ProfileSummary p = summarize_kernels(
      {{"nvjet_a", 1000}, {"nvjet_a", 3000}, {"reduce_kernel", 500}, {"nvjet_b", 2000}}, 2);
  EXPECT_EQ(p.steps, 2);
  EXPECT_DOUBLE_EQ(p.device_ms_per_step, 3.25);
  ASSERT_EQ(p.kernels.size(), 3u);
  EXPECT_EQ(p.kernels[0].name, "nvjet_a");  // most time first
  EXPECT_DOUBLE_EQ(p.kernels[0].ms_per_step, 2.0);
  EXPECT_DOUBLE_EQ(p.kernels[0].launches_per_step, 1.0);
  EXPECT_DOUBLE_EQ(p.category_ms.at("gemm"), 3.0);
  EXPECT_DOUBLE_EQ(p.category_ms.at("reduction"), 0.25);
  const auto j = profile_json(p, 2);
  EXPECT_EQ(j["kernels"].size(), 2u);
}

TEST(BenchBound, TwoStageSpeedupAndLowerBound) {
  // 10k Lighthouse steps at 1 s and 6k dense at 4 s, against 16k dense steps at 4 s.
  EXPECT_DOUBLE_EQ(two_stage_speedup(16000, 10000, 4.0, 1.0), 64000.0 / 34000.0);
  EXPECT_DOUBLE_EQ(two_stage_speedup(100, 0, 2.0, 1.0), 1.0);
  model::StepFlops f;
  f.gemm = 600e12;
  f.attention = 300e12;
  f.scorer = 100e12;
  DevicePeaks peaks;
  peaks.gemm_tflops = 600;
  peaks.attention_tflops = 400;
  EXPECT_DOUBLE_EQ(lower_bound_s(f, peaks), 1.0 + 1.0);
}

}  // namespace
}  // namespace lighthouse::cli
