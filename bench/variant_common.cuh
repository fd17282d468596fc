// What the tuning harness's variant files share (bench/kernel_variants.h): CUDA error checks,
// owned buffers, a stream with timing events, device-generated random inputs, a bitwise
// comparison of two buffers and the alternating timing loop.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/kernel_variants.h"
#include "cuda/common.cuh"
#include "lighthouse/config.h"

namespace lighthouse::bench {
namespace {

using Bf16 = __nv_bfloat16;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// Device buffer owned for the harness's lifetime.
struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit Buffer(size_t n) : bytes(n) { check(cudaMalloc(&ptr, n > 0 ? n : 1), "cudaMalloc"); }
  ~Buffer() { cudaFree(ptr); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

// A stream and two timing events owned for the harness's lifetime.
struct Timing {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  Timing() {
    check(cudaStreamCreate(&stream), "cudaStreamCreate");
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
  }
  ~Timing() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaStreamDestroy(stream);
  }
  Timing(const Timing&) = delete;
  Timing& operator=(const Timing&) = delete;
};

// Standard normal bf16 values from a counter hash (splitmix64, Box-Muller): fresh inputs on the
// device without a host round trip.
__device__ uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
__global__ void fill_normal(Bf16* x, int64_t n, uint64_t seed) {
  for (int64_t i = cuda::global_thread(); i < n; i += cuda::grid_threads()) {
    const uint64_t r = mix(seed ^ mix(static_cast<uint64_t>(i)));
    const float u1 = (static_cast<float>(r >> 40) + 1.0f) * (1.0f / 16777217.0f);
    const float u2 = static_cast<float>((r >> 16) & 0xffffff) * (1.0f / 16777216.0f);
    x[i] = __float2bfloat16(sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
  }
}

// Counts the 32-bit words where a and b differ.
__global__ void count_differences(const uint32_t* a, const uint32_t* b, int64_t words,
                                  unsigned long long* count) {
  unsigned long long local = 0;
  for (int64_t i = cuda::global_thread(); i < words; i += cuda::grid_threads())
    local += a[i] != b[i] ? 1 : 0;
  if (local > 0) atomicAdd(count, local);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Words where a and b differ (0: bitwise equal), on the stream.
inline unsigned long long differing_words(const Buffer& a, const Buffer& b, const Buffer& count,
                                          cudaStream_t stream) {
  check(cudaMemsetAsync(count.ptr, 0, sizeof(unsigned long long), stream), "cudaMemsetAsync");
  const int64_t words = static_cast<int64_t>(a.bytes / 4);
  count_differences<<<cuda::grid_for(words), cuda::kThreads, 0, stream>>>(
      static_cast<const uint32_t*>(a.ptr), static_cast<const uint32_t*>(b.ptr), words,
      static_cast<unsigned long long*>(count.ptr));
  check(cudaGetLastError(), "count_differences");
  unsigned long long diff = 0;
  check(cudaMemcpyAsync(&diff, count.ptr, sizeof diff, cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return diff;
}

// 0xff bytes into every buffer (NaN for fp32 and bf16): an entry a kernel skips cannot match.
inline void poison(const std::vector<const Buffer*>& bufs, cudaStream_t stream) {
  for (const Buffer* b : bufs)
    check(cudaMemsetAsync(b->ptr, 0xff, b->bytes, stream), "cudaMemsetAsync");
}

// Runs `run` (writing outs) after poisoning outs; true when every word equals refs'.
inline bool bitwise_equal_after(const std::function<void()>& run,
                                const std::vector<const Buffer*>& refs,
                                const std::vector<const Buffer*>& outs, const Buffer& count,
                                cudaStream_t stream) {
  poison(outs, stream);
  run();
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  unsigned long long diff = 0;
  for (size_t i = 0; i < refs.size(); ++i)
    diff += differing_words(*refs[i], *outs[i], count, stream);
  return diff == 0;
}

// Median ms of `calls` timed calls of launch (after two untimed ones) on tm's stream.
template <typename F>
double timed_ms(const Timing& tm, int calls, F&& launch) {
  for (int w = 0; w < 2; ++w) launch();
  std::vector<double> ms;
  for (int i = 0; i < calls; ++i) {
    check(cudaEventRecord(tm.start, tm.stream), "cudaEventRecord");
    launch();
    check(cudaEventRecord(tm.stop, tm.stream), "cudaEventRecord");
    check(cudaEventSynchronize(tm.stop), "cudaEventSynchronize");
    float t = 0;
    check(cudaEventElapsedTime(&t, tm.start, tm.stop), "cudaEventElapsedTime");
    ms.push_back(t);
  }
  return median(ms);
}

// Fills buf (bf16 elements) with standard normal values of `seed`.
inline void fill_random(const Buffer& buf, uint64_t seed, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(buf.bytes / sizeof(Bf16));
  fill_normal<<<cuda::grid_for(n), cuda::kThreads, 0, stream>>>(static_cast<Bf16*>(buf.ptr), n,
                                                                seed);
  check(cudaGetLastError(), "fill_normal");
}

// D as every stage kernel takes it: a multiple of 8 up to 256 (checked before any CUDA call).
inline void check_dim(const VariantOptions& opt) {
  if (opt.dim % cuda::kPack != 0 || opt.dim > cuda::kMaxDim)
    throw std::invalid_argument("dim: expected a multiple of 8 up to 256, got " +
                                std::to_string(opt.dim));
}

// The plan's geometry from opt, checked before any CUDA call: the scatter and gather backward
// variants are compiled for L 3 only (stage names the caller).
inline Geometry plan_geometry(const VariantOptions& opt, const char* stage) {
  if (opt.levels != 3)
    throw std::invalid_argument(std::string("levels: the ") + stage +
                                " variants are built for L = 3, got " +
                                std::to_string(opt.levels));
  check_dim(opt);
  Config cfg;
  cfg.levels = opt.levels;
  cfg.pool = opt.pool;
  cfg.topk = opt.topk;
  cfg.tile_topk = opt.tile_topk;
  Geometry g;
  std::string err;
  if (!make_geometry(cfg, opt.n, &g, &err)) throw std::invalid_argument(err);
  return g;
}

// A plan as the op makes it on geometry g: the shipped pool + score and causal select kernels
// on random q and k [1, N, H, D] (H == Hx) of opt's shape; slots [1, H, S] (select's other
// output; the stages varied here read the inverse) and inverse [1, H, P] int64.
struct CausalPlan {
  std::unique_ptr<Buffer> slots, inverse;
  size_t x_bytes = 0, s_bytes = 0;  // one bf16 [N, H, D], one [H, S, D]
};
inline CausalPlan causal_plan(const VariantOptions& opt, const Geometry& g, uint64_t seed,
                              cudaStream_t stream) {
  CausalPlan plan;
  const int64_t H = opt.heads;
  const size_t x_bytes = static_cast<size_t>(opt.n * H * opt.dim) * sizeof(Bf16);
  plan.x_bytes = x_bytes;
  plan.s_bytes = static_cast<size_t>(g.S * H * opt.dim) * sizeof(Bf16);
  const size_t score_bytes = static_cast<size_t>(H * g.P) * sizeof(float);
  Buffer q(x_bytes), k(x_bytes), sq(score_bytes), sk(score_bytes);
  fill_random(q, seed, stream);
  fill_random(k, seed + 1, stream);
  cuda::PoolScoreParams pool;
  pool.dtype = cuda::DType::BFloat16;
  pool.B = 1;
  pool.H = pool.Hx = H;
  pool.D = opt.dim;
  pool.geo = g;
  pool.parts = 2;
  pool.part[0] = {q.ptr, nullptr, static_cast<float*>(sq.ptr), H};
  pool.part[1] = {k.ptr, nullptr, static_cast<float*>(sk.ptr), H};
  check(cuda::launch_pool_score(pool, stream), "launch_pool_score");
  plan.slots = std::make_unique<Buffer>(static_cast<size_t>(H * g.S) * sizeof(int64_t));
  plan.inverse = std::make_unique<Buffer>(static_cast<size_t>(H * g.P) * sizeof(int64_t));
  cuda::SelectParams sel;
  sel.B = 1;
  sel.H = sel.Hx = H;
  sel.geo = g;
  sel.sq = static_cast<const float*>(sq.ptr);
  sel.sk = static_cast<const float*>(sk.ptr);
  sel.slots = static_cast<int64_t*>(plan.slots->ptr);
  sel.inverse = static_cast<int64_t*>(plan.inverse->ptr);
  sel.causal = true;
  check(cuda::launch_select(sel, stream), "launch_select");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");  // before q, k, sq, sk go
  return plan;
}

// Registers, local (spill) bytes and resident blocks per SM of a kernel, as the runtime reports.
template <typename Kernel>
void describe(VariantRow& row, Kernel kernel, size_t smem) {
  cudaFuncAttributes attr{};
  check(cudaFuncGetAttributes(&attr, kernel), "cudaFuncGetAttributes");
  row.registers = attr.numRegs;
  row.local_bytes = static_cast<int>(attr.localSizeBytes);
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&row.blocks_per_sm, kernel, cuda::kThreads,
                                                      smem),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
}

// The device's name and the rows' and the copy's times: every round times each launch
// (rep.rows[i] <- launches[i]) and then the copy, so drifts of the device hit all alike.
inline void time_in_alternation(const VariantOptions& opt, const Timing& tm,
                                const std::vector<std::function<void()>>& launches,
                                const std::function<void()>& copy, VariantReport& rep) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  rep.device = prop.name;
  std::vector<double> copies;
  for (int r = 0; r < opt.rounds; ++r) {
    for (size_t i = 0; i < launches.size(); ++i)
      rep.rows[i].round_ms.push_back(timed_ms(tm, opt.calls, launches[i]));
    copies.push_back(timed_ms(tm, opt.calls, copy));
  }
  for (VariantRow& row : rep.rows) row.ms = median(row.round_ms);
  rep.copy_ms = median(copies);
}

// A variant: a name, its template arguments in words and its kernel.
template <typename Kernel>
struct Candidate {
  const char* name;
  const char* form;
  Kernel kernel;
};

// Runs the shipped form (cands[0]) into refs and every candidate into outs, compared bitwise
// with refs, then times them all in alternation with `copy`. launch(kernel, into_refs) launches
// one kernel on tm's stream writing refs or outs.
template <typename Kernel>
void check_and_time(const std::vector<Candidate<Kernel>>& cands, size_t smem,
                    const std::function<void(Kernel, bool)>& launch,
                    const std::vector<const Buffer*>& refs, const std::vector<const Buffer*>& outs,
                    const std::function<void()>& copy, const VariantOptions& opt,
                    const Timing& tm, VariantReport& rep) {
  poison(refs, tm.stream);
  launch(cands[0].kernel, true);
  Buffer count(sizeof(unsigned long long));
  for (const Candidate<Kernel>& c : cands) {
    VariantRow row;
    row.name = c.name;
    row.form = c.form;
    describe(row, c.kernel, smem);
    row.bitwise = bitwise_equal_after([&] { launch(c.kernel, false); }, refs, outs, count,
                                      tm.stream);
    rep.rows.push_back(row);
  }
  std::vector<std::function<void()>> launches;
  for (const Candidate<Kernel>& c : cands)
    launches.push_back([&launch, kernel = c.kernel] { launch(kernel, false); });
  time_in_alternation(opt, tm, launches, copy, rep);
}

}  // namespace
}  // namespace lighthouse::bench
