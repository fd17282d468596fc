// Shared helpers of the op tests: test shapes (config builders), seeded random inputs (never
// zeros), forward+backward runners through the public API, and tensor comparisons.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "lighthouse/lighthouse.h"

namespace lighthouse::test {

// One test problem: q [B, N, H, D], k/v [B, N, Hkv, D], and the Lighthouse parameters.
struct Shape {
  int64_t B, N, H, Hkv, D;
  int64_t L, p, k, m;

  Config cfg() const;
  std::string name() const;
  int64_t S() const;  // N / p^(L-1) + (L-1) * p * k, computed here from the formula
  int64_t P() const;  // sum_l N / p^l
};

// gtest prints a parameter through this.
void PrintTo(const Shape& s, std::ostream* os);

// Many small shapes covering L in {2,3,4}, p in {2,4,8}, T >= 2, GQA, B > 1, C == m.
std::vector<Shape> property_shapes();
// A subset cheap enough for the float64 oracle and the gradient tests.
std::vector<Shape> oracle_shapes();
// Tiny shapes for finite differences (every coordinate costs two forward passes).
std::vector<Shape> gradient_shapes();
// gtest parameter names.
std::string shape_param_name(const Shape& s, size_t index);

struct Inputs {
  at::Tensor q;  // [B, N, H, D]
  at::Tensor k;  // [B, N, Hkv, D]
  at::Tensor v;  // [B, N, Hkv, D]
};

// Seeded normal tensor; every element is nonzero with probability 1.
at::Tensor randn(at::IntArrayRef sizes, at::ScalarType dtype, uint64_t seed);
// q, k, v for `s`. q and k rows get per-position scales in [0.5, 2) so the norm scores are
// well spread (and the selection is not decided by near-ties).
Inputs random_inputs(const Shape& s, at::ScalarType dtype, uint64_t seed);

// Output and input gradients of one differentiable call under the loss sum(o * grad_out).
struct FwdBwd {
  at::Tensor o, dq, dk, dv;
};
FwdBwd run_attention(const Inputs& in, const Config& cfg, const at::Tensor& grad_out);
FwdBwd run_with_plan(const Inputs& in, const Plan& plan, const Config& cfg,
                     const at::Tensor& grad_out);

// A well-formed slot table: slots [B, H, S] hold S distinct pyramid indices per head and
// inverse [B, H, P] is exactly their inverse (-1 elsewhere). gtest expectations.
void expect_valid_table(const Plan& plan, int64_t S, int64_t P);

// max |a - b| / max |b| (b is the reference); +inf if the shapes differ or any is non-finite.
double rel_err(const at::Tensor& a, const at::Tensor& b);
// Same dtype, shape and bytes (NaN payloads included).
bool bitwise_equal(const at::Tensor& a, const at::Tensor& b);

// Copies of a CPU int64 tensor into a flat vector (row-major).
std::vector<int64_t> to_vector(const at::Tensor& t);

}  // namespace lighthouse::test
