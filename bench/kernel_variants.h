// The data-movement kernels' tuning harness (`lighthouse_kernel_variants`, docs/cuda-notes.md):
// variants of one stage kernel, each a set of template arguments of the kernel the library
// ships (src/cuda/*.cuh), launched on the same random inputs, checked bitwise against the
// shipped form and timed in alternation with it in one process, next to a device-to-device
// copy as the bandwidth ceiling. Torch-free: raw CUDA buffers and events.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lighthouse::bench {

struct VariantOptions {
  int64_t n = 524288, heads = 8, dim = 128;  // x [1, N, H, D] bf16
  int64_t levels = 3, pool = 4;
  int64_t topk = 2048, tile_topk = 128;  // the plan of the gather backward (causal selection)
  int rounds = 7;  // alternation rounds: every variant once per round
  int calls = 9;   // timed calls per variant and round (their median is the round's time)
  uint64_t seed = 0;
};

struct VariantRow {
  std::string name;  // "base" is the shipped form
  std::string form;  // the template arguments in words
  int registers = 0, local_bytes = 0, blocks_per_sm = 0;  // cudaFuncGetAttributes, occupancy
  bool bitwise = false;                                   // every output equals the base's
  double ms = 0;                                          // median over the rounds
  std::vector<double> round_ms;
};

struct VariantReport {
  std::string stage, device;
  int64_t n = 0;
  double bytes = 0;    // bytes the stage reads and writes
  double copy_ms = 0;  // copy of one [N, H, D] in the same run (median over the rounds)
  double copy_bytes = 0;
  std::vector<VariantRow> rows;
};

// Stage 1 and the norm scores of q, k and v in one launch (src/cuda/pool_score.cuh). Throws
// std::runtime_error naming the CUDA call that failed.
VariantReport run_pool_score_variants(const VariantOptions& opt);

// The fused gather backward of q, k and v, H == Hx, L 3 (src/cuda/gather_scatter.cuh), on the
// plan the shipped pool + score and causal select kernels make from random q and k.
VariantReport run_gather_backward_variants(const VariantOptions& opt);

// The scatter, L 3 (src/cuda/gather_scatter.cuh), on the same kind of plan.
VariantReport run_scatter_variants(const VariantOptions& opt);

}  // namespace lighthouse::bench
