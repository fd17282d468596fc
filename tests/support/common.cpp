// Shared helpers of the op tests (see common.h).
#include "support/common.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstring>
#include <limits>

namespace lighthouse::test {

Config Shape::cfg() const {
  Config c;
  c.levels = L;
  c.pool = p;
  c.topk = k;
  c.tile_topk = m;
  c.selection = Selection::Stratified;  // the published rule the oracle implements (SPEC.md §5)
  return c;
}

std::string Shape::name() const {
  return "B" + std::to_string(B) + "_N" + std::to_string(N) + "_H" + std::to_string(H) + "x" +
         std::to_string(Hkv) + "_D" + std::to_string(D) + "_L" + std::to_string(L) + "p" +
         std::to_string(p) + "k" + std::to_string(k) + "m" + std::to_string(m);
}

int64_t Shape::S() const {
  int64_t pc = 1;
  for (int64_t l = 1; l < L; ++l) pc *= p;
  return N / pc + (L - 1) * p * k;
}

int64_t Shape::P() const {
  int64_t total = 0, w = 1;
  for (int64_t l = 0; l < L; ++l, w *= p) total += N / w;
  return total;
}

void PrintTo(const Shape& s, std::ostream* os) {
  *os << s.name();
}

std::vector<Shape> property_shapes() {
  //       B     N  H Hkv   D  L   p    k   m    (T = k/m, C = N / p^(L-1) / T)
  return {{2, 256, 4, 2, 16, 3, 2, 16, 8},    // T 2, C 32, GQA 2, B 2
          {1, 512, 2, 2, 8, 2, 8, 16, 4},     // L 2, p 8, T 4
          {2, 1024, 4, 1, 16, 4, 2, 8, 4},    // L 4, MQA
          {1, 2048, 2, 1, 32, 3, 4, 32, 8},   // D 32, T 4
          {2, 4096, 2, 2, 8, 4, 4, 8, 4},     // L 4, p 4
          {1, 2048, 3, 3, 16, 2, 4, 32, 16},  // odd H, C 256
          {1, 1024, 2, 1, 8, 3, 8, 4, 2},     // m 2 (smallest), p 8
          {2, 256, 2, 1, 8, 2, 2, 128, 32},   // C == m: every coarsest entry is refined
          {1, 8192, 2, 1, 8, 4, 8, 8, 4},     // L 4, p 8
          {1, 768, 6, 2, 8, 3, 2, 24, 8},     // T 3, N not a power of two
          {1, 512, 1, 1, 8, 3, 4, 8, 8},      // T 1
          {1, 4096, 1, 1, 8, 3, 16, 8, 4}};   // p 16 (largest)
}

std::vector<Shape> oracle_shapes() {
  const std::vector<Shape> all = property_shapes();
  return {all[0], all[1], all[2], all[3], all[6], all[7], all[8], all[9]};
}

std::vector<Shape> gradient_shapes() {
  return {{2, 64, 2, 1, 8, 2, 2, 8, 4},    // L 2, T 2, MQA, B 2
          {1, 128, 2, 2, 8, 3, 4, 4, 2},   // L 3, p 4, m 2
          {1, 256, 4, 2, 4, 4, 2, 4, 2}};  // L 4, GQA 2
}

std::string shape_param_name(const Shape& s, size_t index) {
  return std::to_string(index) + "_" + s.name();
}

at::Tensor randn(at::IntArrayRef sizes, at::ScalarType dtype, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(sizes, gen, at::TensorOptions().dtype(at::kDouble)).to(dtype);
}

Inputs random_inputs(const Shape& s, at::ScalarType dtype, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto opts = at::TensorOptions().dtype(at::kDouble);
  auto scaled = [&](int64_t heads) {
    at::Tensor x = at::randn({s.B, s.N, heads, s.D}, gen, opts);               // [B, N, Hx, D]
    at::Tensor scale = at::rand({s.B, s.N, heads, 1}, gen, opts) * 1.5 + 0.5;  // [B, N, Hx, 1]
    return (x * scale).to(dtype);
  };
  Inputs in;
  in.q = scaled(s.H);
  in.k = scaled(s.Hkv);
  in.v = at::randn({s.B, s.N, s.Hkv, s.D}, gen, opts).to(dtype);
  return in;
}

namespace {

FwdBwd backward(const at::Tensor& o, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                const at::Tensor& grad_out) {
  auto grads = torch::autograd::grad({o}, {q, k, v}, {grad_out});
  return {o.detach(), grads[0], grads[1], grads[2]};
}

}  // namespace

FwdBwd run_attention(const Inputs& in, const Config& cfg, const at::Tensor& grad_out) {
  at::Tensor q = in.q.detach().clone().requires_grad_(true);
  at::Tensor k = in.k.detach().clone().requires_grad_(true);
  at::Tensor v = in.v.detach().clone().requires_grad_(true);
  return backward(attention(q, k, v, cfg), q, k, v, grad_out);
}

FwdBwd run_with_plan(const Inputs& in, const Plan& plan, const Config& cfg,
                     const at::Tensor& grad_out) {
  at::Tensor q = in.q.detach().clone().requires_grad_(true);
  at::Tensor k = in.k.detach().clone().requires_grad_(true);
  at::Tensor v = in.v.detach().clone().requires_grad_(true);
  return backward(attention(q, k, v, plan, cfg), q, k, v, grad_out);
}

void expect_valid_table(const Plan& plan, int64_t S, int64_t P) {
  ASSERT_EQ(plan.slots.dim(), 3);
  ASSERT_EQ(plan.slots.size(2), S);
  ASSERT_EQ(plan.inverse.size(2), P);
  ASSERT_TRUE(plan.slots.ge(0).all().item<bool>() && plan.slots.lt(P).all().item<bool>());
  const at::Tensor sorted = std::get<0>(plan.slots.sort(2));  // [B, H, S]
  EXPECT_TRUE(sorted.narrow(2, 1, S - 1).gt(sorted.narrow(2, 0, S - 1)).all().item<bool>())
      << "a pyramid index appears twice";
  const at::Tensor arange = at::arange(S, plan.slots.options()).expand_as(plan.slots);
  EXPECT_TRUE(at::equal(plan.inverse.gather(2, plan.slots), arange)) << "inverse[slots[s]] != s";
  EXPECT_EQ(plan.inverse.ge(0).sum().item<int64_t>(), plan.slots.numel())
      << "inverse lists entries that are not in slots";
}

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  const double inf = std::numeric_limits<double>::infinity();
  if (!a.defined() || !b.defined() || a.sizes() != b.sizes()) return inf;
  const at::Tensor ad = a.to(at::kDouble), bd = b.to(at::kDouble);
  if (!ad.isfinite().all().item<bool>() || !bd.isfinite().all().item<bool>()) return inf;
  const double scale = bd.abs().max().item<double>();
  const double diff = (ad - bd).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

bool bitwise_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const at::Tensor ac = a.contiguous(), bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.nbytes()) == 0;
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace lighthouse::test
