// The fused elementwise kernels (src/cuda/fused.h through model/fused.h) on CUDA against the
// at:: reference on the CPU in float64, forward and backward, on fresh random inputs: fp32
// tight, bf16 / fp16 within the dtype's tolerance; head dims 64 and 128 and one the packs
// cannot take, N not a multiple of any block size, a strided RoPE input, misaligned SwiGLU
// inputs. Then a tiny Llama on CUDA with model.fused_kernels true vs false.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "gpu/gpu_common.h"
#include "model/autocast.h"
#include "model/fused.h"
#include "model/layers.h"
#include "model/llama.h"
#include "model/tiny.h"
#include "support/common.h"
#include "ops/fused.h"

namespace lighthouse::model {
namespace {

using test::rel_err;
using test::to_cuda;

// fp32 against float64: a few fp32 roundings and expf.
double tol(at::ScalarType dt) { return dt == at::kFloat ? 2e-5 : test::tolerance(dt); }

at::Tensor rnd(at::IntArrayRef sizes, at::ScalarType dt, uint64_t seed) {
  return test::randn(sizes, at::kFloat, seed).to(dt);
}

at::Tensor cpu64(const at::Tensor& t) { return t.detach().cpu().to(at::kDouble); }

// Gradients of the outputs `outs` of fn(inputs) for the output gradients `gouts`.
std::vector<at::Tensor> backward(const std::vector<at::Tensor>& outs,
                                 const std::vector<at::Tensor>& inputs,
                                 const std::vector<at::Tensor>& gouts) {
  return torch::autograd::grad(outs, inputs, gouts);
}

const at::ScalarType kDtypes[] = {at::kFloat, at::kBFloat16, at::kHalf};

TEST(CudaFusedSwiglu, ForwardBackwardMatchReference) {
  SKIP_WITHOUT_CUDA();
  uint64_t seed = 100;
  for (const auto dt : kDtypes) {
    // packs; an odd count (single elements); a misaligned start (offset 1 element).
    for (const int64_t offset : {0, 1}) {
      for (const auto& sizes : {std::vector<int64_t>{2, 37, 96}, {3, 13, 7}}) {
        const int64_t n = sizes[0] * sizes[1] * sizes[2];
        const at::Tensor g = to_cuda(rnd({n + offset}, dt, ++seed) * 3)
                                 .narrow(0, offset, n).view(sizes).requires_grad_(true);
        const at::Tensor u = to_cuda(rnd({n + offset}, dt, ++seed))
                                 .narrow(0, offset, n).view(sizes).requires_grad_(true);
        const at::Tensor dy = to_cuda(rnd(sizes, dt, ++seed));
        const at::Tensor y = swiglu(g, u);
        const auto d = backward({y}, {g, u}, {dy});
        const at::Tensor g64 = cpu64(g).requires_grad_(true), u64 = cpu64(u).requires_grad_(true);
        const at::Tensor y64 = swiglu(g64, u64);
        const auto d64 = backward({y64}, {g64, u64}, {cpu64(dy)});
        const std::string what = c10::str(dt, " sizes ", sizes, " offset ", offset);
        EXPECT_EQ(y.scalar_type(), dt) << what;
        EXPECT_LE(rel_err(cpu64(y), y64), tol(dt)) << what;
        EXPECT_LE(rel_err(cpu64(d[0]), d64[0]), tol(dt)) << "dg " << what;
        EXPECT_LE(rel_err(cpu64(d[1]), d64[1]), tol(dt)) << "du " << what;
      }
    }
  }
}

TEST(CudaFusedRope, ForwardBackwardMatchReference) {
  SKIP_WITHOUT_CUDA();
  uint64_t seed = 200;
  const int64_t B = 2, N = 37, H = 3;
  for (const auto dt : kDtypes) {
    for (const int64_t D : {64, 128, 20}) {  // 20: half 10, no packs
      RopeCache cache(D, 10000.0);
      const RopeTables t = cache.get(N, at::Device(at::kCUDA), dt);
      // q of a fused qkv projection: strides [N*3HD, 3HD, D, 1].
      const at::Tensor qkv = to_cuda(rnd({B, N, 3 * H * D}, dt, ++seed));
      const at::Tensor x = qkv.narrow(-1, H * D, H * D).view({B, N, H, D}).requires_grad_(true);
      ASSERT_FALSE(x.is_contiguous());
      // a gradient laid out [B, H, N, D] (as attention's backward leaves it), viewed [B, N, H, D]
      const at::Tensor g = to_cuda(rnd({B, H, N, D}, dt, ++seed)).transpose(1, 2);
      const at::Tensor y = rope(x, t.cos, t.sin, /*kernel=*/true);
      const at::Tensor dx = backward({y}, {x}, {g})[0];
      const at::Tensor x64 = cpu64(x).requires_grad_(true);
      const at::Tensor cos64 = cpu64(t.cos), sin64 = cpu64(t.sin);
      const at::Tensor y64 = rope(x64, cos64, sin64, /*kernel=*/false);
      const at::Tensor dx64 = backward({y64}, {x64}, {cpu64(g)})[0];
      const std::string what = c10::str(dt, " D ", D);
      EXPECT_EQ(y.scalar_type(), dt) << what;
      EXPECT_LE(rel_err(cpu64(y), y64), tol(dt)) << what;
      EXPECT_LE(rel_err(cpu64(dx), dx64), tol(dt)) << "dx " << what;
      // The kernel against the same composition on CUDA.
      const at::Tensor plain = rope(x, t.cos, t.sin, /*kernel=*/false);
      EXPECT_LE(rel_err(cpu64(y), cpu64(plain)), 2 * tol(dt)) << what;
    }
  }
}

struct NormCase {
  at::ScalarType x, r;  // residual dtype, branch (and output) dtype
};

TEST(CudaFusedAddRmsNorm, ForwardBackwardMatchReference) {
  SKIP_WITHOUT_CUDA();
  uint64_t seed = 300;
  const NormCase cases[] = {{at::kFloat, at::kFloat},
                            {at::kFloat, at::kBFloat16},  // the model under bf16 autocast
                            {at::kBFloat16, at::kBFloat16},
                            {at::kHalf, at::kHalf}};
  for (const NormCase& c : cases) {
    for (const int64_t C : {64, 136, 1024, 12}) {  // 136: 17 packs; 12: the at:: fallback
      for (const bool use_h : {true, false}) {
        const int64_t B = 2, N = 37;
        const at::Tensor x = to_cuda(rnd({B, N, C}, c.x, ++seed)).requires_grad_(true);
        const at::Tensor r = to_cuda(rnd({B, N, C}, c.r, ++seed)).requires_grad_(true);
        const at::Tensor w = to_cuda(rnd({C}, at::kFloat, ++seed) + 1).requires_grad_(true);
        EXPECT_EQ(ops::add_rms_norm_cuda_supports(x, r, w, c.r), C % 8 == 0);
        const at::Tensor gh = to_cuda(rnd({B, N, C}, c.x, ++seed));
        const at::Tensor gy = to_cuda(rnd({B, N, C}, c.r, ++seed));
        const AddRmsNorm o = add_rms_norm(x, r, w, 1e-5, c.r);
        const std::vector<at::Tensor> outs =
            use_h ? std::vector<at::Tensor>{o.h, o.y} : std::vector<at::Tensor>{o.y};
        const std::vector<at::Tensor> gouts =
            use_h ? std::vector<at::Tensor>{gh, gy} : std::vector<at::Tensor>{gy};
        const auto d = backward(outs, {x, r, w}, gouts);

        const at::Tensor x64 = cpu64(x).requires_grad_(true), r64 = cpu64(r).requires_grad_(true);
        const at::Tensor w64 = cpu64(w).requires_grad_(true);
        const AddRmsNorm o64 = add_rms_norm(x64, r64, w64, 1e-5, at::kDouble);
        const std::vector<at::Tensor> outs64 =
            use_h ? std::vector<at::Tensor>{o64.h, o64.y} : std::vector<at::Tensor>{o64.y};
        std::vector<at::Tensor> gouts64;
        for (const at::Tensor& t : gouts) gouts64.push_back(cpu64(t));
        const auto d64 = backward(outs64, {x64, r64, w64}, gouts64);

        const std::string what = c10::str(c.x, " + ", c.r, " C ", C, " h used ", use_h);
        const double e = tol(c.r);
        EXPECT_EQ(o.h.scalar_type(), c.x) << what;
        EXPECT_EQ(o.y.scalar_type(), c.r) << what;
        EXPECT_LE(rel_err(cpu64(o.h), o64.h), tol(c.x)) << "h " << what;
        EXPECT_LE(rel_err(cpu64(o.y), o64.y), e) << "y " << what;
        EXPECT_EQ(d[0].scalar_type(), c.x) << what;
        EXPECT_EQ(d[1].scalar_type(), c.r) << what;
        EXPECT_LE(rel_err(cpu64(d[0]), d64[0]), e) << "dx " << what;
        EXPECT_LE(rel_err(cpu64(d[1]), d64[1]), e) << "dr " << what;
        EXPECT_LE(rel_err(cpu64(d[2]), d64[2]), e) << "dweight " << what;
      }
    }
  }
}

// Contiguous inputs that start off a 16-byte boundary are copied, not refused.
TEST(CudaFusedAddRmsNorm, MisalignedInputs) {
  SKIP_WITHOUT_CUDA();
  const int64_t rows = 5, C = 64, n = rows * C;
  const at::Tensor x = to_cuda(rnd({n + 1}, at::kFloat, 401)).narrow(0, 1, n).view({rows, C});
  const at::Tensor r = to_cuda(rnd({n + 3}, at::kBFloat16, 402)).narrow(0, 3, n).view({rows, C});
  const at::Tensor w = to_cuda(rnd({C}, at::kFloat, 403) + 1);
  ASSERT_TRUE(x.is_contiguous());
  const AddRmsNorm o = add_rms_norm(x, r, w, 1e-5, at::kBFloat16);
  const AddRmsNorm o64 = add_rms_norm(cpu64(x), cpu64(r), cpu64(w), 1e-5, at::kDouble);
  EXPECT_LE(rel_err(cpu64(o.h), o64.h), tol(at::kFloat));
  EXPECT_LE(rel_err(cpu64(o.y), o64.y), tol(at::kBFloat16));
}

// The tiny GQA Llama of the CPU model tests, widened so its shapes take every kernel's packs
// (head dim 16, d_model 64).
ModelConfig model_config() {
  ModelConfig cfg = testing::tiny_config();
  cfg.d_model = 64;
  cfg.head_dim = 16;
  cfg.ffn_hidden = 96;
  return cfg;
}

struct Result {
  double loss = 0;
  std::map<std::string, at::Tensor> grads;
};

// fused: the fast path (model.fused_kernels and model.grouped_projections); else neither.
Result run_model(ModelConfig cfg, bool fused, bool bf16, AttentionMode mode) {
  cfg.fused_kernels = fused;
  cfg.grouped_projections = fused;
  torch::manual_seed(7);
  Llama model(cfg);
  model->to(at::Device(at::kCUDA));
  model->set_attention_mode(mode);
  torch::manual_seed(11);
  const at::Tensor tokens = to_cuda(torch::randint(0, kVocab, {2, 32}, torch::kLong));  // [B, N]
  at::Tensor loss;
  {
    AutocastScope autocast(bf16);
    const at::Tensor logits = model->forward(tokens);  // [B, N, vocab]
    loss = at::cross_entropy_loss(logits.reshape({-1, kVocab}).to(at::kFloat),
                                  tokens.roll(-1, 1).reshape(-1));
  }
  loss.backward();
  Result out;
  out.loss = loss.item<double>();
  for (const auto& p : model->named_parameters()) out.grads[p.key()] = cpu64(p.value().grad());
  return out;
}

TEST(CudaFusedModel, FusedMatchesComposition) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    bool bf16;
    bool recompute;
    AttentionMode mode;
  };
  for (const Case& c : {Case{false, false, AttentionMode::Dense}, Case{false, true, AttentionMode::Lighthouse},
                        Case{true, false, AttentionMode::Dense}, Case{true, true, AttentionMode::Dense}}) {
    ModelConfig cfg = model_config();
    cfg.activation_checkpointing = c.recompute;
    const Result plain = run_model(cfg, false, c.bf16, c.mode);
    const Result fused = run_model(cfg, true, c.bf16, c.mode);
    const std::string what = c10::str("bf16 ", c.bf16, " recompute ", c.recompute, " mode ",
                                      mode_name(c.mode));
    const double e = c.bf16 ? test::tolerance(at::kBFloat16) : 1e-4;
    EXPECT_NEAR(fused.loss, plain.loss, e * std::abs(plain.loss)) << what;
    ASSERT_EQ(fused.grads.size(), plain.grads.size());
    for (const auto& [name, g] : plain.grads)
      EXPECT_LE(rel_err(fused.grads.at(name), g), e) << name << " " << what;
  }
}

}  // namespace
}  // namespace lighthouse::model
