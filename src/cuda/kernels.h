// Torch-free CUDA kernels of the Lighthouse stages (SPEC.md §3-§7): a params struct of raw
// pointers and int64 sizes per kernel, and a launcher that takes a cudaStream_t, checks the
// launch and returns its error code. The ops layer (src/ops/cuda_impl.cpp) fills the structs
// from contiguous at::Tensors and turns errors into exceptions.
//
// Element type: float32, float16 or bfloat16 (accumulation is always fp32). D % 8 == 0 and
// D <= 256: every thread moves one pack of 8 elements (16 bytes, two 16-byte loads for fp32).
// All tensors are contiguous; the layouts are those of src/ops/stages.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "lighthouse/geometry.h"

namespace lighthouse::cuda {

enum class DType { Float32, Float16, BFloat16 };

constexpr int kMaxScatterLevels = 8;  // scatter and gather_backward are instantiated for L <= 8
constexpr int kPack = 8;              // elements per thread
constexpr int kMaxDim = 256;          // D <= 32 packs: one row of one head fits a warp

// What every stage kernel reads: the element type, the sizes (each kernel's comment says
// which it uses) and the plan geometry (include/lighthouse/geometry.h) by value: the level
// sizes and offsets for every stage, the tiles for select. p = 2^log2p. Hx is the head count
// of the tensor the stage reads per KV head (x, or sk for select: Hkv).
struct StageParams {
  DType dtype = DType::Float32;
  int64_t B = 0, H = 0, Hx = 0, S = 0, D = 0;
  Geometry geo;
};

// Stage 1 and the norm scores (B, D; Hx per part): x [B, N, Hx, D] -> pyramid [B, P1, Hx, D]
// (levels >= 1, level l at rows offset[l] - N; null to skip) and score [B, Hx, P] fp32 (null
// to skip; the tail's level-0 norms included). Up to three tensors of one B, N, D and dtype
// (q, k and v) share a launch, one part each; each part's outputs bitwise equal a launch of
// its own.
struct PoolPart {
  const void* x = nullptr;
  void* pyramid = nullptr;
  float* score = nullptr;
  int64_t Hx = 0;
};
constexpr int kMaxPoolParts = 3;
struct PoolScoreParams : StageParams {
  PoolPart part[kMaxPoolParts];
  int parts = 1;
};
cudaError_t launch_pool_score(const PoolScoreParams& prm, cudaStream_t stream);

// Stage 2 (B, H, Hx = Hkv; no dtype): the per-tile cascade and post-order slot table. sq
// [B, H, P], sk [B, Hkv, P] fp32 -> slots [B, H, S], inverse [B, H, P] int64 (the launcher
// fills inverse with -1 first, and writes the tail's level-0 tokens after the tiles). causal:
// the causal rule of SPEC.md §12 instead of the stratified top-m/2 of §4. The tiles, m and S
// come from the geometry. prev_sq [B, H, L-1], prev_sk [B, Hkv, L-1] (causal only; null: none):
// the halo of SPEC.md §10, the scores of the window before position 0 at levels 1..L-1.
struct SelectParams : StageParams {
  const float* sq = nullptr;
  const float* sk = nullptr;
  const float* prev_sq = nullptr;
  const float* prev_sk = nullptr;
  int64_t* slots = nullptr;
  int64_t* inverse = nullptr;
  bool causal = false;
};
// Dynamic shared memory one select block needs; the ops layer checks it against the device.
size_t select_shared_bytes(const SelectParams& prm);
cudaError_t launch_select(const SelectParams& prm, cudaStream_t stream);

// Gather (SPEC.md §5; B, H, Hx, S, D): x [B, N, Hx, D], pyramid [B, P1, Hx, D], slots
// [B, H, S] -> out [B, H, S, D]. Query head h reads head h / (H / Hx) of x.
struct GatherParams : StageParams {
  const void* x = nullptr;
  const void* pyramid = nullptr;
  const int64_t* slots = nullptr;
  void* out = nullptr;
};
cudaError_t launch_gather(const GatherParams& prm, cudaStream_t stream);

// Gather backward (SPEC.md §7; B, H, Hx, S, D): grad [B, H, S, D], inverse [B, H, P] -> dx
// [B, N, Hx, D], each base token the 1/p^l-weighted sum over levels and over the query heads
// of its head. The fused form of q, k and v (grad_q, dq, grad2, dx2 all set) shares the slot
// lookups of one launch: grad2 -> dx2 as grad -> dx, and grad_q [B, H, S, D] -> dq
// [B, N, H, D] per query head; each output bitwise equals the single form's.
struct GatherBackwardParams : StageParams {
  const void* grad = nullptr;
  const int64_t* inverse = nullptr;
  void* dx = nullptr;
  const void* grad2 = nullptr;
  void* dx2 = nullptr;
  const void* grad_q = nullptr;
  void* dq = nullptr;
};
cudaError_t launch_gather_backward(const GatherBackwardParams& prm, cudaStream_t stream);

// Scatter back as a gather (SPEC.md §6; B, H, S, D): o_tilde [B, H, S, D], inverse [B, H, P]
// -> out [B, N, H, D], each position the sum of its <= L contributions.
struct ScatterParams : StageParams {
  const void* o_tilde = nullptr;
  const int64_t* inverse = nullptr;
  void* out = nullptr;
};
cudaError_t launch_scatter(const ScatterParams& prm, cudaStream_t stream);

// Scatter backward (SPEC.md §7; B, H, S, D): grad [B, N, H, D], slots [B, H, S] -> [B, H, S, D],
// each slot the sum of grad over the positions R(entry) it scattered to.
struct ScatterBackwardParams : StageParams {
  const void* grad = nullptr;
  const int64_t* slots = nullptr;
  void* out = nullptr;
};
cudaError_t launch_scatter_backward(const ScatterBackwardParams& prm, cudaStream_t stream);

}  // namespace lighthouse::cuda
