// The fused layers' autograd functions on the CPU (model/fused.h): the forward equals the at::
// composition it replaces, the backward equals autograd's of that composition, and both pass
// a float64 finite-difference gradient check on random inputs. The CUDA kernels are checked
// against these in tests/gpu/test_cuda_fused.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <vector>

#include "model/fused.h"
#include "model/layers.h"
#include "model/recompute.h"
#include "model/tiny.h"

namespace lighthouse::model {
namespace {

using Fn = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

at::Tensor rnd(at::IntArrayRef sizes, at::ScalarType dtype = at::kDouble) {
  return torch::randn(sizes, torch::TensorOptions().dtype(dtype));
}

// Central differences of sum(fn(inputs) * probe) against autograd's gradients, every
// coordinate of every input (float64, tiny shapes).
void gradcheck(const Fn& fn, std::vector<at::Tensor> inputs, double tol = 1e-6) {
  for (at::Tensor& t : inputs) t = t.detach().clone().requires_grad_(true);
  const at::Tensor probe = rnd(fn(inputs).sizes());
  const auto loss = [&](const std::vector<at::Tensor>& in) { return (fn(in) * probe).sum(); };
  const std::vector<at::Tensor> analytic = torch::autograd::grad({loss(inputs)}, inputs);
  const double step = 1e-6;
  for (size_t i = 0; i < inputs.size(); ++i) {
    torch::NoGradGuard no_grad;
    at::Tensor flat = inputs[i].detach().clone().view(-1);
    at::Tensor numeric = torch::zeros_like(flat);
    for (int64_t j = 0; j < flat.numel(); ++j) {
      std::vector<at::Tensor> in(inputs.begin(), inputs.end());
      const double x0 = flat[j].item<double>();
      flat[j] = x0 + step;
      in[i] = flat.view(inputs[i].sizes());
      const double up = loss(in).item<double>();
      flat[j] = x0 - step;
      const double down = loss(in).item<double>();
      flat[j] = x0;
      numeric[j] = (up - down) / (2 * step);
    }
    EXPECT_TRUE(torch::allclose(analytic[i].reshape(-1), numeric, tol, tol))
        << "input " << i << ": max diff "
        << (analytic[i].reshape(-1) - numeric).abs().max().item<double>();
  }
}

// Gradients of sum(fn(inputs) * probe) with respect to every input.
std::vector<at::Tensor> grads(const Fn& fn, std::vector<at::Tensor> inputs,
                              const at::Tensor& probe) {
  for (at::Tensor& t : inputs) t = t.detach().clone().requires_grad_(true);
  return torch::autograd::grad({(fn(inputs) * probe).sum()}, inputs);
}

TEST(FusedSwiglu, CpuPathEqualsComposition) {
  torch::manual_seed(3);
  for (const auto dtype : {at::kFloat, at::kDouble}) {
    const at::Tensor g = rnd({3, 5, 7}, dtype), u = rnd({3, 5, 7}, dtype);  // [3, 5, 7]
    const at::Tensor y = swiglu(g, u);
    EXPECT_TRUE(torch::equal(y, at::silu(g) * u)) << dtype;
    const at::Tensor probe = rnd({3, 5, 7}, dtype);
    const auto fused = grads([](const auto& in) { return swiglu(in[0], in[1]); }, {g, u}, probe);
    const auto plain =
        grads([](const auto& in) { return at::silu(in[0]) * in[1]; }, {g, u}, probe);
    const double tol = dtype == at::kDouble ? 1e-12 : 1e-5;
    for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(torch::allclose(fused[i], plain[i], tol, tol)) << i;
  }
}

TEST(FusedSwiglu, Gradcheck) {
  torch::manual_seed(4);
  gradcheck([](const auto& in) { return swiglu(in[0], in[1]); },
            {rnd({2, 3, 5}) * 3, rnd({2, 3, 5})});
}

// The RoPE tables of the model and a strided view of a projection, as the attention makes.
struct RopeCase {
  RopeTables tables;
  at::Tensor x;  // [B, N, H, D], not contiguous
};

RopeCase rope_case(int64_t N, int64_t D, at::ScalarType dtype) {
  RopeCache cache(D, 10000.0);
  RopeCase c{cache.get(N, torch::kCPU, dtype), {}};
  const at::Tensor qkv = rnd({2, N, 3 * 3 * D}, dtype);  // [B, N, 3 * H * D]
  c.x = qkv.narrow(-1, 3 * D, 3 * D).view({2, N, 3, D});   // strides [9ND, 9D, D, 1]
  return c;
}

TEST(FusedRope, CpuPathEqualsComposition) {
  torch::manual_seed(5);
  const RopeCase c = rope_case(6, 8, at::kDouble);
  ASSERT_FALSE(c.x.is_contiguous());
  const at::Tensor& cos = c.tables.cos;
  const at::Tensor& sin = c.tables.sin;
  const auto swap = [](const at::Tensor& v) {
    return at::cat({v.narrow(-1, 4, 4), v.narrow(-1, 0, 4)}, -1);
  };
  EXPECT_TRUE(torch::allclose(rope(c.x, cos, sin, true), c.x * cos + swap(c.x) * sin, 1e-14,
                              1e-14));
  const at::Tensor probe = rnd({2, 6, 3, 8});
  const auto fused =
      grads([&](const auto& in) { return rope(in[0], cos, sin, true); }, {c.x}, probe);
  const auto plain =
      grads([&](const auto& in) { return in[0] * cos + swap(in[0]) * sin; }, {c.x}, probe);
  EXPECT_TRUE(torch::allclose(fused[0], plain[0], 1e-12, 1e-12));
}

TEST(FusedRope, Gradcheck) {
  torch::manual_seed(6);
  const RopeCase c = rope_case(5, 4, at::kDouble);
  gradcheck([&](const auto& in) { return rope(in[0], c.tables.cos, c.tables.sin, true); },
            {c.x});
}

at::Tensor hy(const AddRmsNorm& o) { return at::cat({o.h, o.y}, -1); }

TEST(FusedAddRmsNorm, CpuPathEqualsComposition) {
  torch::manual_seed(7);
  const int64_t C = 12;
  // fp32 residual, a lower-precision branch and output (the model under autocast), and float64.
  for (const auto [xt, rt] : {std::pair{at::kDouble, at::kDouble}, std::pair{at::kFloat, at::kFloat},
                              std::pair{at::kFloat, at::kBFloat16}}) {
    const at::Tensor x = rnd({2, 5, C}, xt), r = rnd({2, 5, C}, rt);  // [B, N, C]
    const at::Tensor w = rnd({C}, xt) + 1;                             // [C]
    const AddRmsNorm o = add_rms_norm(x, r, w, 1e-5, rt);
    const at::Tensor h = x + r;
    EXPECT_TRUE(torch::equal(o.h, h));
    EXPECT_TRUE(torch::equal(o.y, at::rms_norm(h, {C}, w, 1e-5).to(rt)));
    EXPECT_EQ(o.y.scalar_type(), rt);
    // The gradient reaches h from both outputs, as when the model reads h and y.
    const at::Tensor probe = rnd({2, 5, 2 * C}, xt);
    const auto fused = grads([&](const auto& in) {
      return hy(add_rms_norm(in[0], in[1], in[2], 1e-5, rt)).to(xt);
    }, {x, r, w}, probe);
    const auto plain = grads([&](const auto& in) {
      const at::Tensor hh = in[0] + in[1];
      return at::cat({hh, at::rms_norm(hh, {C}, in[2], 1e-5).to(rt).to(xt)}, -1);
    }, {x, r, w}, probe);
    const double tol = xt == at::kDouble ? 1e-12 : (rt == at::kBFloat16 ? 2e-2 : 1e-5);
    for (size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(torch::allclose(fused[i].to(at::kDouble), plain[i].to(at::kDouble), tol, tol))
          << xt << " " << rt << " input " << i;
    EXPECT_EQ(fused[1].scalar_type(), rt);
  }
}

TEST(FusedAddRmsNorm, Gradcheck) {
  torch::manual_seed(8);
  const int64_t C = 6;
  gradcheck([](const auto& in) { return hy(add_rms_norm(in[0], in[1], in[2], 1e-5, at::kDouble)); },
            {rnd({3, C}), rnd({3, C}), rnd({C})});
  // Only y used: h's gradient is undefined in the backward.
  gradcheck([](const auto& in) { return add_rms_norm(in[0], in[1], in[2], 1e-2, at::kDouble).y; },
            {rnd({2, 2, C}), rnd({2, 2, C}), rnd({C})});
}

TEST(FusedAddRmsNorm, BadShapesNameTheArgument) {
  const at::Tensor x = rnd({2, 8});
  EXPECT_THROW(
      {
        try {
          add_rms_norm(x, rnd({2, 8}), rnd({7}), 1e-5, at::kDouble);
        } catch (const c10::Error& e) {
          EXPECT_NE(std::string(e.what()).find("weight must be [C]"), std::string::npos);
          throw;
        }
      },
      c10::Error);
  EXPECT_THROW(add_rms_norm(x, rnd({2, 4}), rnd({8}), 1e-5, at::kDouble), c10::Error);
}

// On the CPU model.fused_kernels changes nothing: the compositions run either way.
TEST(FusedKernels, CpuModelIsUnchanged) {
  ModelConfig cfg = testing::tiny_config();
  const at::Tensor tokens = testing::random_tokens(2, testing::kTinyN);  // [B, N]
  std::vector<at::Tensor> logits, grads;
  for (const bool fused : {false, true}) {
    cfg.fused_kernels = fused;
    Llama model = testing::make_model(cfg);
    const at::Tensor out = model->forward(tokens);  // [B, N, vocab]
    out.square().mean().backward();
    logits.push_back(out.detach());
    grads.push_back(model->named_parameters()["layers.2.mlp.gate_proj.weight"].grad().clone());
  }
  EXPECT_TRUE(torch::equal(logits[0], logits[1]));
  EXPECT_TRUE(torch::equal(grads[0], grads[1]));
}

// The deferred form the fused path runs on CUDA (the add of m fused with the first norm, the
// MLP's add left out) equals forward on the stream x + m; on the CPU through the references.
TEST(FusedKernels, DeferredLayerEqualsForward) {
  const ModelConfig cfg = testing::tiny_config();
  torch::manual_seed(9);
  DecoderLayer layer(cfg);
  RopeCache cache(cfg.head_dim, cfg.rope_theta);
  const RopeTables rope = cache.get(testing::kTinyN, torch::kCPU, at::kFloat);
  const at::Tensor x = rnd({2, testing::kTinyN, cfg.d_model}, at::kFloat).requires_grad_(true);
  const at::Tensor m = rnd({2, testing::kTinyN, cfg.d_model}, at::kFloat).requires_grad_(true);
  const at::Tensor probe = rnd({2, testing::kTinyN, cfg.d_model}, at::kFloat);
  std::vector<at::Tensor> inputs{x, m};
  for (const auto& p : layer->parameters()) inputs.push_back(p);
  const auto [h, b] = layer->forward_deferred(x, m, rope, false);
  const at::Tensor deferred = h + b;                              // [B, N, d_model]
  const at::Tensor plain = layer->forward(x + m, rope, false);     // [B, N, d_model]
  EXPECT_TRUE(torch::allclose(deferred, plain, 1e-6, 1e-6));
  const auto gd = torch::autograd::grad({(deferred * probe).sum()}, inputs);
  const auto gp = torch::autograd::grad({(plain * probe).sum()}, inputs);
  for (size_t i = 0; i < inputs.size(); ++i)
    EXPECT_TRUE(torch::allclose(gd[i], gp[i], 1e-5, 1e-5)) << "input " << i;
  // Without m the stream is x itself.
  const auto [h0, b0] = layer->forward_deferred(x, at::Tensor(), rope, false);
  EXPECT_TRUE(torch::allclose(h0 + b0, layer->forward(x, rope, false), 1e-6, 1e-6));
}

// recomputed() over several inputs and outputs, one output unused: the gradients of the inputs
// and the parameters equal those of the direct call.
TEST(FusedKernels, RecomputedSeveralTensors) {
  torch::manual_seed(10);
  const at::Tensor a = rnd({4, 3}).requires_grad_(true), b = rnd({4, 3}).requires_grad_(true);
  const at::Tensor p = rnd({3}).requires_grad_(true);
  const MultiFn fn = [p](const std::vector<at::Tensor>& in) {
    return std::vector<at::Tensor>{in[0] * in[1] * p, (in[0] + p).sin(), in[1] * 2};
  };
  const auto direct = fn({a, b});
  const auto rec = recomputed(fn, {a, b}, {p});
  ASSERT_EQ(rec.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(rec[i], direct[i].detach()));
  const at::Tensor pa = rnd({4, 3}), pb = rnd({4, 3});
  const auto gd = torch::autograd::grad({(direct[0] * pa).sum() + (direct[1] * pb).sum()}, {a, b, p});
  const auto gr = torch::autograd::grad({(rec[0] * pa).sum() + (rec[1] * pb).sum()}, {a, b, p});
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::allclose(gr[i], gd[i], 1e-12, 1e-12)) << i;
}

}  // namespace
}  // namespace lighthouse::model
