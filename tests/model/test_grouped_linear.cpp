// grouped_linear (model/grouped_linear.h) on the CPU: its outputs and every gradient equal
// those of separate linears on random float64 inputs, with outputs left out of the loss and
// without an input gradient; bad weights are refused by name; a tiny Llama with
// model.grouped_projections matches the one without. On CUDA under bf16 autocast:
// tests/gpu/test_cuda_fused.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/grouped_linear.h"
#include "model/llama.h"
#include "model/tiny.h"

namespace lighthouse::model {
namespace {

at::Tensor rnd(at::IntArrayRef sizes) {
  return torch::randn(sizes, torch::TensorOptions().dtype(at::kDouble));
}

std::vector<at::Tensor> leaves(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& t : ts) out.push_back(t.detach().clone().requires_grad_(true));
  return out;
}

// GQA-like widths: weights of 6, 4 and 4 rows over an input of 5 features, x [2, 3, 5].
TEST(GroupedLinear, OutputsAndGradientsEqualSeparateLinears) {
  torch::manual_seed(21);
  const std::vector<at::Tensor> init{rnd({2, 3, 5}), rnd({6, 5}), rnd({4, 5}), rnd({4, 5})};
  const std::vector<at::Tensor> probes{rnd({2, 3, 6}), rnd({2, 3, 4}), rnd({2, 3, 4})};
  // Every output in the loss, then the middle one left out (its gradient undefined).
  for (const std::vector<bool>& used : {std::vector<bool>{true, true, true}, {true, false, true},
                                        {false, true, false}}) {
    const std::vector<at::Tensor> a = leaves(init), b = leaves(init);
    const std::vector<at::Tensor> ya = grouped_linear(a[0], {a[1], a[2], a[3]});
    ASSERT_EQ(ya.size(), 3u);
    at::Tensor la = torch::zeros({}, at::kDouble), lb = torch::zeros({}, at::kDouble);
    for (size_t i = 0; i < 3; ++i) {
      const at::Tensor yb = at::linear(b[0], b[i + 1]);
      EXPECT_TRUE(torch::equal(ya[i], yb)) << "output " << i;
      if (!used[i]) continue;
      la = la + (ya[i] * probes[i]).sum();
      lb = lb + (yb * probes[i]).sum();
    }
    la.backward();
    lb.backward();
    for (size_t i = 0; i < 4; ++i) {
      const bool has = i == 0 || used[i - 1];
      ASSERT_EQ(a[i].grad().defined(), has) << "input " << i;
      if (has) EXPECT_TRUE(torch::allclose(a[i].grad(), b[i].grad(), 1e-12, 1e-12)) << i;
    }
  }
}

// x without a gradient (the weights only), and weights without one (x only).
TEST(GroupedLinear, OnlyTheGradientsAskedFor) {
  torch::manual_seed(22);
  const at::Tensor x = rnd({4, 5}), w = rnd({3, 5}).requires_grad_(true);
  grouped_linear(x, {w})[0].sum().backward();
  EXPECT_TRUE(torch::allclose(w.grad(), x.sum(0).expand({3, 5}), 1e-12, 1e-12));
  const at::Tensor xg = rnd({4, 5}).requires_grad_(true), w1 = rnd({3, 5}), w2 = rnd({2, 5});
  const auto y = grouped_linear(xg, {w1, w2});
  (y[0].sum() + y[1].sum()).backward();
  EXPECT_TRUE(torch::allclose(xg.grad(), (w1.sum(0) + w2.sum(0)).expand({4, 5}), 1e-12, 1e-12));
}

std::string message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

TEST(GroupedLinear, BadWeightsAreRefusedByName) {
  const at::Tensor x = rnd({4, 5});
  EXPECT_NE(message([&] { grouped_linear(x, {}); }).find("at least one weight"),
            std::string::npos);
  EXPECT_NE(message([&] { grouped_linear(x, {rnd({3, 5}), rnd({3, 4})}); })
                .find("weights[1] must be [out, 5]"),
            std::string::npos);
  EXPECT_NE(message([&] { grouped_linear(x, {rnd({3, 5}).to(at::kFloat)}); })
                .find("weights[0] must be x's Double"),
            std::string::npos);
  // Without autocast the weight is the projection's own.
  const at::Tensor w = rnd({3, 5});
  EXPECT_TRUE(compute_weight(w, x).is_same(w));
}

// A tiny Llama (GQA: n_kv_heads < n_heads) with and without model.grouped_projections: the
// same logits, and the same gradients of every parameter up to float32 rounding.
TEST(GroupedLinear, ModelMatchesSeparateProjections) {
  ModelConfig cfg = testing::tiny_config();
  cfg.n_kv_heads = cfg.n_heads / 2;
  const at::Tensor tokens = testing::random_tokens(2, testing::kTinyN);  // [B, N]
  std::vector<at::Tensor> logits;
  std::vector<std::map<std::string, at::Tensor>> grads;
  for (const bool grouped : {false, true}) {
    cfg.grouped_projections = grouped;
    Llama model = testing::make_model(cfg);
    const at::Tensor out = model->forward(tokens);  // [B, N, vocab]
    out.square().mean().backward();
    logits.push_back(out.detach());
    grads.emplace_back();
    for (const auto& p : model->named_parameters()) grads.back()[p.key()] = p.value().grad();
  }
  EXPECT_TRUE(torch::equal(logits[0], logits[1]));
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (const auto& [name, g] : grads[0]) {
    ASSERT_TRUE(g.defined()) << name;
    EXPECT_TRUE(torch::allclose(g, grads[1].at(name), 1e-4, 1e-6)) << name;
  }
}

}  // namespace
}  // namespace lighthouse::model
