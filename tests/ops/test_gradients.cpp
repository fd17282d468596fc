// SPEC.md §8.6 and §8.3 with the slot table held fixed (attention with a plan), float64:
// gradients agree with central finite differences, per coordinate and along random
// directions; outputs at positions <= t are bit-for-bit unchanged when any input after t
// changes.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "support/common.h"

namespace lighthouse::test {
namespace {

constexpr double kEps = 1e-5;    // central-difference step
constexpr double kFdTol = 1e-6;  // relative to max(1, |analytic|)

// loss(q, k, v) = sum(attention(q, k, v; plan) * w) with w fixed.
struct Loss {
  const Plan& plan;
  Config cfg;
  at::Tensor w;  // [B, N, H, D]
  double operator()(const Inputs& in) const {
    return (attention(in.q, in.k, in.v, plan, cfg) * w).sum().item<double>();
  }
};

// Inputs with `which` (0 q, 1 k, 2 v) moved by eps * dir.
Inputs moved(const Inputs& in, int which, const at::Tensor& dir, double eps) {
  Inputs out = in;
  at::Tensor& x = which == 0 ? out.q : which == 1 ? out.k : out.v;
  x = x + dir * eps;
  return out;
}

double central(const Loss& loss, const Inputs& in, int which, const at::Tensor& dir) {
  return (loss(moved(in, which, dir, kEps)) - loss(moved(in, which, dir, -kEps))) / (2 * kEps);
}

class Gradients : public ::testing::TestWithParam<Shape> {};

TEST_P(Gradients, FiniteDifferencesPerCoordinate) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 31);
  const Plan pl = plan(in.q, in.k, s.cfg());
  const Loss loss{pl, s.cfg(), randn({s.B, s.N, s.H, s.D}, at::kDouble, 32)};
  const FwdBwd got = run_with_plan(in, pl, s.cfg(), loss.w);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(33);
  const char* names[] = {"q", "k", "v"};
  for (int which = 0; which < 3; ++which) {
    const at::Tensor& grad = which == 0 ? got.dq : which == 1 ? got.dk : got.dv;
    // Random coordinates plus the first and last two positions (batch 0, head 0, dim 0).
    const int64_t per_pos = grad.numel() / (s.B * s.N);
    std::vector<int64_t> flat;
    for (int64_t n = 0; n < 24; ++n)
      flat.push_back(at::randint(grad.numel(), {1}, gen, at::kLong).item<int64_t>());
    for (int64_t t : {int64_t{0}, int64_t{1}, s.N - 2, s.N - 1}) flat.push_back(t * per_pos);
    for (int64_t f : flat) {
      at::Tensor dir = at::zeros_like(grad);  // [B, N, Hx, D], a single 1
      dir.view(-1)[f] = 1.0;
      const double fd = central(loss, in, which, dir);
      const double an = grad.view(-1)[f].item<double>();
      EXPECT_NEAR(fd, an, kFdTol * std::max(1.0, std::abs(an)))
          << "d loss / d " << names[which] << " at flat index " << f;
    }
  }
}

TEST_P(Gradients, FiniteDifferencesRandomDirections) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 34);
  const Plan pl = plan(in.q, in.k, s.cfg());
  const Loss loss{pl, s.cfg(), randn({s.B, s.N, s.H, s.D}, at::kDouble, 35)};
  const FwdBwd got = run_with_plan(in, pl, s.cfg(), loss.w);
  for (int which = 0; which < 3; ++which)
    for (uint64_t seed = 0; seed < 4; ++seed) {
      const at::Tensor& grad = which == 0 ? got.dq : which == 1 ? got.dk : got.dv;
      const at::Tensor dir = randn(grad.sizes(), at::kDouble, 100 + 10 * which + seed);
      const double an = (grad * dir).sum().item<double>();
      const double fd = central(loss, in, which, dir);
      EXPECT_NEAR(fd, an, kFdTol * std::max(1.0, std::abs(an))) << "input " << which;
      EXPECT_GT(std::abs(an), 1e-3) << "degenerate direction";
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Gradients, ::testing::ValuesIn(gradient_shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

class Causality : public ::testing::TestWithParam<Shape> {};

// Replace q, k and v at every position > t by fresh random values.
Inputs perturb_after(const Inputs& in, int64_t t, uint64_t seed) {
  auto tail = [&](const at::Tensor& x, uint64_t sd) {
    at::Tensor y = x.clone();
    const int64_t n = x.size(1) - t - 1;
    if (n > 0)
      y.narrow(1, t + 1, n).copy_(randn(y.narrow(1, t + 1, n).sizes(), x.scalar_type(), sd));
    return y;
  };
  return {tail(in.q, seed), tail(in.k, seed + 1), tail(in.v, seed + 2)};
}

TEST_P(Causality, FutureInputsLeavePastOutputsBitwise) {
  const Shape s = GetParam();
  const Inputs in = random_inputs(s, at::kDouble, 41);
  const Plan pl = plan(in.q, in.k, s.cfg());
  const at::Tensor o = attention(in.q, in.k, in.v, pl, s.cfg());  // [B, N, H, D]
  for (int64_t t : {int64_t{0}, s.p - 1, s.N / 3, s.N / 2 + 1, s.N - 2}) {
    const Inputs in2 = perturb_after(in, t, 42 + t);
    const at::Tensor o2 = attention(in2.q, in2.k, in2.v, pl, s.cfg());
    EXPECT_TRUE(bitwise_equal(o2.narrow(1, 0, t + 1), o.narrow(1, 0, t + 1))) << "t = " << t;
    // The perturbation is real: the output after t moves.
    EXPECT_FALSE(bitwise_equal(o2.narrow(1, t + 1, s.N - t - 1), o.narrow(1, t + 1, s.N - t - 1)))
        << "t = " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Causality, ::testing::ValuesIn(oracle_shapes()),
                         [](const auto& info) { return shape_param_name(info.param, info.index); });

}  // namespace
}  // namespace lighthouse::test
