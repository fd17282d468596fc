// Variants of the pool + score kernel (src/cuda/pool_score.cuh) for the tuning harness: rows per
// batch, whole-window loads, and blocks per SM asked of ptxas, each against the shipped form.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/kernel_variants.h"
#include "cuda/pool_score.cuh"
#include "lighthouse/geometry.h"

namespace lighthouse::bench {
namespace {

using cuda::PoolScoreKernel;
using cuda::pool_score_kernel;
using cuda::pool_score_kernel_min;
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

struct Candidate {
  const char* name;
  const char* form;
  PoolScoreKernel kernel;
};

// The shipped form first (pool_score.cu: pool_score_kernel<T, 4, 0>).
const std::vector<Candidate>& candidates() {
  static const std::vector<Candidate> list = {
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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

VariantReport run_pool_score_variants(const VariantOptions& opt) {
  if (opt.dim % cuda::kPack != 0 || opt.dim > cuda::kMaxDim)
    throw std::invalid_argument("dim: expected a multiple of 8 up to 256, got " +
                                std::to_string(opt.dim));
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
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  rep.device = prop.name;
  // q, k and v read, their pyramids written, the scores of q and k written
  rep.bytes =
      3.0 * static_cast<double>(x_bytes + pyr_bytes) + 2.0 * static_cast<double>(score_bytes);
  rep.copy_bytes = 2.0 * static_cast<double>(x_bytes);

  Timing tm;
  cudaStream_t stream = tm.stream;
  Buffer q(x_bytes), k(x_bytes), v(x_bytes), copy_dst(x_bytes);
  const unsigned fill_grid = cuda::grid_for(N * H * D);
  uint64_t seed = opt.seed * 3;
  for (Buffer* b : {&q, &k, &v})
    fill_normal<<<fill_grid, cuda::kThreads, 0, stream>>>(static_cast<Bf16*>(b->ptr), N * H * D,
                                                          seed++);
  check(cudaGetLastError(), "fill_normal");

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
  const auto& cands = candidates();
  // Outputs start as 0xff bytes (NaN scores) on both sides: an entry a variant skips cannot
  // match, and the entries no variant writes (a ragged tail's level-0 scores) compare equal.
  for (const Outputs* o : {&ref, &out})
    for (const Buffer* b : o->all())
      check(cudaMemsetAsync(b->ptr, 0xff, b->bytes, stream), "cudaMemsetAsync");
  check(cuda::launch_pool_score_body(cands[0].kernel, params_for(ref), stream), "base launch");

  Buffer count(sizeof(unsigned long long));
  const size_t smem = static_cast<size_t>(g.c - 1) * (cuda::kPack + 1) * cuda::kThreads * 4;
  for (const Candidate& c : cands) {
    VariantRow row;
    row.name = c.name;
    row.form = c.form;
    cudaFuncAttributes attr{};
    check(cudaFuncGetAttributes(&attr, c.kernel), "cudaFuncGetAttributes");
    row.registers = attr.numRegs;
    row.local_bytes = static_cast<int>(attr.localSizeBytes);
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&row.blocks_per_sm, c.kernel,
                                                        cuda::kThreads, smem),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    for (const Buffer* b : out.all())
      check(cudaMemsetAsync(b->ptr, 0xff, b->bytes, stream), "cudaMemsetAsync");
    check(cuda::launch_pool_score_body(c.kernel, params_for(out), stream), c.name);
    check(cudaMemsetAsync(count.ptr, 0, sizeof(unsigned long long), stream), "cudaMemsetAsync");
    const auto refs = ref.all(), outs = out.all();
    for (size_t i = 0; i < refs.size(); ++i) {
      const int64_t words = static_cast<int64_t>(refs[i]->bytes / 4);
      count_differences<<<cuda::grid_for(words), cuda::kThreads, 0, stream>>>(
          static_cast<const uint32_t*>(refs[i]->ptr), static_cast<const uint32_t*>(outs[i]->ptr),
          words, static_cast<unsigned long long*>(count.ptr));
    }
    unsigned long long diff = 0;
    check(cudaMemcpyAsync(&diff, count.ptr, sizeof diff, cudaMemcpyDeviceToHost, stream), "copy");
    check(cudaStreamSynchronize(stream), c.name);
    row.bitwise = diff == 0;
    rep.rows.push_back(row);
  }

  cudaEvent_t a = tm.start, b = tm.stop;
  auto timed = [&](auto&& launch) {
    for (int w = 0; w < 2; ++w) launch();
    std::vector<double> ms;
    for (int i = 0; i < opt.calls; ++i) {
      check(cudaEventRecord(a, stream), "cudaEventRecord");
      launch();
      check(cudaEventRecord(b, stream), "cudaEventRecord");
      check(cudaEventSynchronize(b), "cudaEventSynchronize");
      float t = 0;
      check(cudaEventElapsedTime(&t, a, b), "cudaEventElapsedTime");
      ms.push_back(t);
    }
    return median(ms);
  };
  std::vector<double> copies;
  const cuda::PoolScoreParams timed_prm = params_for(out);
  for (int r = 0; r < opt.rounds; ++r) {
    for (size_t i = 0; i < cands.size(); ++i)
      rep.rows[i].round_ms.push_back(timed([&] {
        check(cuda::launch_pool_score_body(cands[i].kernel, timed_prm, stream), cands[i].name);
      }));
    copies.push_back(timed([&] {
      check(cudaMemcpyAsync(copy_dst.ptr, q.ptr, x_bytes, cudaMemcpyDeviceToDevice, stream),
            "cudaMemcpyAsync");
    }));
  }
  for (VariantRow& row : rep.rows) row.ms = median(row.round_ms);
  rep.copy_ms = median(copies);
  return rep;
}

}  // namespace lighthouse::bench
