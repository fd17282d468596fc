// `lighthouse bench` internals shared by its files: the arguments (bench_op.cpp parses them and
// runs the CPU timing), the CUDA sweep (bench_cuda.cpp), its correctness check
// (bench_verify.cpp) and its table / JSON / Markdown report (bench_report.cpp).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cli/args.h"
#include "lighthouse/config.h"

namespace lighthouse::cli {

// The op benchmark's preset: lighthouse::Config's defaults but k = 256, which fits its default
// N = 16384 (k = 2048 would need C = N / (p^(L-1) T) >= m, i.e. N >= 32768).
inline Config bench_preset() {
  Config c;
  c.topk = 256;
  return c;
}

struct BenchArgs {
  int64_t batch = 1, n = 16384, heads = 4, kv_heads = 0, dim = 64;
  // lighthouse.* keys (--set, or the old --levels, --topk, ... aliases), resolved into `lh`
  // before the benchmark runs. lighthouse.scorer = dilated: the CUDA sweep times the dilated
  // scorer next to the norm scorer.
  ConfigFlags keys;
  Config lh = bench_preset();
  int64_t warmup = 1, repeats = 3, seed = 0;
  std::string dtype = "float32", device = "cpu", json;
  // CUDA sweep: one point per sequence length; topks has one entry, or one per length.
  std::vector<int64_t> seq_lens;
  std::vector<int64_t> topks;
  std::string markdown;
  double case_budget_s = 8;   // fewer repeats (>= 2) for a case slower than budget / repeats
  int64_t verify_max_n = 0;   // verify Lighthouse against the reference up to this N (0: all)
};

at::ScalarType parse_dtype(const std::string& s);

// One timed case: median of `repeats` runs (device events), peak memory of one run.
struct CaseResult {
  double median_ms = 0;
  int64_t repeats = 0;
  double peak_gib = 0;  // allocated during the call, inputs and gradients included
};

// One stage of the Lighthouse forward or backward, timed separately.
struct StageResult {
  std::string name;
  double median_ms = 0;
  double bytes = 0;   // fewest bytes the stage must move (reads + writes)
  double flops = 0;   // inner SDPA only
};

struct VerifyResult {
  bool plan_equal = false;  // GPU slot table == CPU slot table on the same GPU scores
  double o = 0, dq = 0, dk = 0, dv = 0;  // rel. error against the torch-op reference
  double dense = 0;                      // dense cuDNN against dense flash
  double dilated_scores = -1;            // dilated: GPU scores vs the CPU reference (prefix)
  bool ok = false;
};

struct BenchPoint {
  int64_t N = 0, k = 0, S = 0;
  std::map<std::string, CaseResult> cases;  // e.g. "dense_cudnn_fwdbwd", "lh_cudnn_fwd"
  std::vector<StageResult> stages;          // Lighthouse with the cuDNN inner SDPA
  VerifyResult verify;
  bool verified = false;
};

struct BenchReport {
  std::string device, date, command;
  double copy_gbps = 0;  // device-to-device copy, bytes read + written per second
  BenchArgs args;
  std::vector<BenchPoint> points;
};

#ifdef LIGHTHOUSE_WITH_CUDA
// The CUDA sweep of `lighthouse bench --device cuda` (bench_cuda.cpp).
int run_cuda_bench(const BenchArgs& a, const std::string& command);

// Lighthouse on q, k, v (one point of the sweep) against a reference built from stock torch
// ops in fp32 on the GPU, with the same slot table; the plan is checked against the CPU
// cascade on the same scores (cfg's scorer), and dilated scores against the CPU reference on a
// prefix of the sequence (bench_verify.cpp).
VerifyResult verify_lighthouse(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& dout, const Config& cfg);
#endif

// Human table on stdout, JSON and Markdown files (bench_report.cpp).
void print_report(const BenchReport& r);
void write_json(const BenchReport& r, const std::string& path);
void write_markdown(const BenchReport& r, const std::string& path);

}  // namespace lighthouse::cli
