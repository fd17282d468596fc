// Bad input: every case raises a c10 error (ValueError or TypeError) whose message names the
// offending parameter; none crashes, hangs or silently truncates. Covers the public C++ API,
// the string arguments of the torch ops, user-supplied plans and the stage ops.
#include <gtest/gtest.h>

#include <functional>

#include "ops/handle.h"
#include "ops/stages.h"
#include "support/common.h"

namespace lighthouse::test {
namespace {

struct BadCase {
  const char* name;
  std::function<void()> call;
  std::vector<std::string> needles;  // substrings the message must contain
  bool type_error = false;           // c10::TypeError rather than c10::ValueError
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}

// A valid problem: q [1, 256, 4, 8], k/v [1, 256, 2, 8], L 3, p 2, k 16, m 8 (S = 128).
const Shape kShape{1, 256, 4, 2, 8, 3, 2, 16, 8};

Inputs valid() {
  return random_inputs(kShape, at::kDouble, 71);
}

// kShape's config with the causal selection (whose select stage takes a halo).
Config causal_cfg() {
  Config c = kShape.cfg();
  c.selection = Selection::Causal;
  return c;
}

Config cfg_with(int64_t L, int64_t p, int64_t k, int64_t m) {
  return Shape{1, 1, 1, 1, 1, L, p, k, m}.cfg();
}

// q, k, v with sequence length n and head dim d (heads as in kShape).
Inputs sized(int64_t n, int64_t d) {
  Shape s = kShape;
  s.N = n;
  s.D = d;
  return random_inputs(s, at::kDouble, 72);
}

void attend(const Inputs& in, const Config& cfg) {
  attention(in.q, in.k, in.v, cfg);
}

// The string arguments are only reachable through the registered op.
void attend_strings(const char* scorer, const char* sdpa, const char* selection = "stratified") {
  static auto op =
      ops::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t,
                                int64_t, int64_t, int64_t, c10::string_view, c10::string_view,
                                int64_t, c10::string_view)>("lighthouse::attention");
  const Inputs in = valid();
  op.call(in.q, in.k, in.v, 3, 2, 16, 8, scorer, sdpa, 4, selection);
}

void dense_string(const char* sdpa) {
  static auto op =
      ops::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                c10::string_view)>("lighthouse::dense_attention");
  const Inputs in = valid();
  op.call(in.q, in.k, in.v, sdpa);
}

// attention with the valid inputs and a plan edited by `edit`.
void with_plan(const std::function<void(Plan&)>& edit, const Config& cfg = kShape.cfg()) {
  const Inputs in = valid();
  Plan pl = plan(in.q, in.k, kShape.cfg());
  edit(pl);
  attention(in.q, in.k, in.v, pl, cfg);
}

// attention on the valid inputs after `edit` changed them.
void edited(const std::function<void(Inputs&)>& edit) {
  Inputs in = valid();
  edit(in);
  attention(in.q, in.k, in.v, kShape.cfg());
}

std::vector<BadCase> cases() {
  using I = Inputs&;
  return {
      // Shapes of q, k, v.
      {"q_rank",
       [] { edited([](I in) { in.q = in.q[0]; }); },
       {"q must be [B, N, H, D]", "[256, 4, 8]"}},
      {"k_rank",
       [] { edited([](I in) { in.k = in.k.unsqueeze(0); }); },
       {"k must be [B, N, Hkv, D]"}},
      {"v_rank", [] { edited([](I in) { in.v = in.v[0]; }); }, {"v must be [B, N, Hkv, D]"}},
      {"batch_mismatch",
       [] {
         edited([](I in) { in.k = in.k.repeat({2, 1, 1, 1}), in.v = in.v.repeat({2, 1, 1, 1}); });
       },
       {"batch size", "B = 1", "got 2"}},
      {"seq_mismatch",
       [] { edited([](I in) { in.k = in.k.narrow(1, 0, 128), in.v = in.v.narrow(1, 0, 128); }); },
       {"sequence length (dim 1)", "N = 256", "got 128"}},
      {"head_dim_mismatch",
       [] { edited([](I in) { in.k = in.k.narrow(3, 0, 4), in.v = in.v.narrow(3, 0, 4); }); },
       {"head dim (dim 3)", "D = 8", "got 4"}},
      {"v_sizes_mismatch",
       [] { edited([](I in) { in.v = in.v.narrow(3, 0, 4); }); },
       {"v sizes must equal k sizes"}},
      {"heads_not_multiple",
       [] { edited([](I in) {
              in.k = in.k.narrow(2, 0, 1).repeat({1, 1, 3, 1}), in.v = in.k;
            }); },
       {"H = 4", "Hkv = 3", "GQA"}},
      // Config rules.
      {"levels_below_2", [] { attend(valid(), cfg_with(1, 2, 16, 8)); }, {"levels (L)", "got 1"}},
      {"levels_above_16",
       [] { attend(valid(), cfg_with(17, 2, 16, 8)); },
       {"levels (L)", "got 17"}},
      {"pool_not_power_of_two",
       [] { attend(valid(), cfg_with(3, 3, 16, 8)); },
       {"pool (p)", "power of two", "got 3"}},
      {"pool_above_16", [] { attend(valid(), cfg_with(3, 32, 16, 8)); }, {"pool (p)", "got 32"}},
      {"pool_1", [] { attend(valid(), cfg_with(3, 1, 16, 8)); }, {"pool (p)", "got 1"}},
      {"topk_not_multiple_of_m",
       [] { attend(valid(), cfg_with(3, 2, 12, 8)); },
       {"topk (k)", "multiple of tile_topk (m) = 8", "got 12"}},
      {"topk_zero", [] { attend(valid(), cfg_with(3, 2, 0, 8)); }, {"topk (k)", "got 0"}},
      {"tile_topk_odd",
       [] { attend(valid(), cfg_with(3, 2, 15, 5)); },
       {"tile_topk (m)", "even", "got 5"}},
      {"tile_topk_zero",
       [] { attend(valid(), cfg_with(3, 2, 16, 0)); },
       {"tile_topk (m)", "got 0"}},
      {"tile_topk_negative",
       [] { attend(valid(), cfg_with(3, 2, 16, -2)); },
       {"tile_topk (m)", "got -2"}},
      // Geometry against N: any N >= 1 is served (SPEC.md §2; BadInputBaseline below).
      // Dtypes and devices.
      {"k_dtype_mismatch",
       [] { edited([](I in) { in.k = in.k.to(at::kFloat); }); },
       {"k dtype must equal q dtype"},
       true},
      {"v_dtype_mismatch",
       [] { edited([](I in) { in.v = in.v.to(at::kFloat); }); },
       {"v dtype must equal q dtype"},
       true},
      {"integer_dtype",
       [] {
         edited([](I in) { in = {in.q.to(at::kLong), in.k.to(at::kLong), in.v.to(at::kLong)}; });
       },
       {"q must be float32, float64, bfloat16 or float16", "Long"},
       true},
      {"bool_dtype",
       [] {
         const Inputs in = valid();
         plan(in.q.gt(0), in.k.gt(0), kShape.cfg());
       },
       {"lighthouse::plan: q must be float32"},
       true},
      {"k_on_meta",
       [] { edited([](I in) { in.k = in.k.to(at::kMeta); }); },
       {"k must be on q's device cpu", "meta"}},
      {"v_on_meta",
       [] { edited([](I in) { in.v = in.v.to(at::kMeta); }); },
       {"v must be on q's device cpu", "meta"}},
      // Empty tensors.
      {"empty_batch",
       [] {
         edited([](I in) {
           in = {in.q.narrow(0, 0, 0), in.k.narrow(0, 0, 0), in.v.narrow(0, 0, 0)};
         });
       },
       {"q must be non-empty", "[0, 256, 4, 8]"}},
      {"empty_sequence", [] { attend(sized(0, 8), kShape.cfg()); }, {"q must be non-empty"}},
      {"empty_head_dim",
       [] { attend(sized(256, 0), kShape.cfg()); },
       {"q must be non-empty", "[1, 256, 4, 0]"}},
      // String arguments.
      {"bad_scorer",
       [] { attend_strings("strided", "auto"); },
       {"scorer must be \"norm\" or \"dilated\"", "\"strided\""}},
      {"bad_sdpa", [] { attend_strings("norm", "fast"); }, {"sdpa backend", "\"fast\""}},
      {"bad_selection",
       [] { attend_strings("norm", "auto", "online"); },
       {"selection must be \"stratified\" or \"causal\"", "\"online\""}},
      {"dense_bad_sdpa", [] { dense_string("FLASH"); }, {"sdpa backend", "\"FLASH\""}},
      {"dense_q_rank",
       [] {
         const Inputs in = valid();
         dense_attention(in.q[0], in.k, in.v);
       },
       {"lighthouse::dense_attention: q must be [B, N, H, D]"}},
      {"dense_heads_not_multiple",
       [] {
         const Inputs in = valid();
         dense_attention(in.q.narrow(2, 0, 3), in.k, in.v);
       },
       {"lighthouse::dense_attention", "H = 3", "Hkv = 2"}},
      // User plans.
      {"plan_slots_int32",
       [] { with_plan([](Plan& p) { p.slots = p.slots.to(at::kInt); }); },
       {"slots must be int64", "Int"},
       true},
      {"plan_inverse_float",
       [] { with_plan([](Plan& p) { p.inverse = p.inverse.to(at::kFloat); }); },
       {"inverse must be int64"},
       true},
      {"plan_slots_heads",
       [] { with_plan([](Plan& p) { p.slots = p.slots.narrow(1, 0, 2); }); },
       {"slots must be [B, H, S] = [1, 4, S]", "[1, 2, 128]"}},
      {"plan_slots_rank",
       [] { with_plan([](Plan& p) { p.slots = p.slots[0]; }); },
       {"slots must be [B, H, S]"}},
      {"plan_slots_empty",
       [] { with_plan([](Plan& p) { p.slots = p.slots.narrow(2, 0, 0); }); },
       {"slots must be [B, H, S]", "[1, 4, 0]"}},
      {"plan_inverse_size",
       [] { with_plan([](Plan& p) { p.inverse = p.inverse.narrow(2, 0, 447); }); },
       {"inverse must be [B, H, P] = [1, 4, 448]", "447"}},
      {"plan_levels_mismatch",
       [] { with_plan([](Plan&) {}, cfg_with(2, 2, 16, 8)); },
       {"inverse must be [B, H, P]", "levels = 2"}},
      {"plan_pool_mismatch",
       [] { with_plan([](Plan&) {}, cfg_with(3, 4, 16, 8)); },
       {"inverse must be [B, H, P]", "pool = 4"}},
      {"plan_slots_out_of_range",
       [] { with_plan([](Plan& p) { p.slots = p.slots + 1000; }); },
       {"slots values must lie in [0, 448)"}},
      {"plan_slots_negative",
       [] { with_plan([](Plan& p) { p.slots = p.slots - 1000; }); },
       {"slots values must lie in [0, 448)"}},
      {"plan_inverse_out_of_range",
       [] { with_plan([](Plan& p) { p.inverse = p.inverse + 1000; }); },
       {"inverse values must lie in [-1, 128)"}},
      {"plan_inconsistent",
       [] { with_plan([](Plan& p) { p.slots = p.slots.flip(2); }); },
       {"inverse must be the inverse of slots"}},
      {"plan_duplicate_slots",
       [] { with_plan([](Plan& p) { p.slots = at::zeros_like(p.slots); }); },
       {"inverse must be the inverse of slots"}},
      {"plan_inverse_extra_entry",
       [] {
         with_plan([](Plan& p) {  // a pyramid index outside slots also claims slot 0
           const at::Tensor i = p.inverse.eq(-1).nonzero()[0];  // [3]
           p.inverse.index_put_({i[0], i[1], i[2]}, 0);
         });
       },
       {"inverse must be the inverse of slots"}},
      {"plan_on_meta",
       [] { with_plan([](Plan& p) { p.inverse = p.inverse.to(at::kMeta); }); },
       {"inverse must be on q's device cpu"}},
      {"plan_op_q_rank",
       [] {
         const Inputs in = valid();
         plan(in.q[0], in.k, kShape.cfg());
       },
       {"lighthouse::plan: q must be [B, N, H, D]"}},
      // Stage ops.
      {"select_float64_scores",
       [] {
         const at::Tensor s = randn({1, 4, 448}, at::kDouble, 73);
         ops::select(s, s.narrow(1, 0, 2), kShape.cfg());
       },
       {"lighthouse::_select: sq and sk must be float32", "Double"},
       true},
      {"select_not_a_pyramid",
       [] {
         const at::Tensor s = randn({1, 4, 447}, at::kFloat, 74);
         ops::select(s, s.narrow(1, 0, 2), kShape.cfg());
       },
       {"lighthouse::_select sq: pyramid dimension 447"}},
      // The causal rule's halo (SPEC.md §10): prev_sq [B, H, L-1] and prev_sk [B, Hkv, L-1].
      {"select_halo_alone",
       [] {
         const at::Tensor s = randn({1, 4, 448}, at::kFloat, 84);
         ops::select(s, s.narrow(1, 0, 2), causal_cfg(), randn({1, 4, 2}, at::kFloat, 85));
       },
       {"lighthouse::_select: prev_sq and prev_sk", "must be given together, got only prev_sq"}},
      {"select_halo_stratified",
       [] {
         const at::Tensor s = randn({1, 4, 448}, at::kFloat, 86);
         Config cfg = kShape.cfg();
         cfg.selection = Selection::Stratified;
         ops::select(s, s.narrow(1, 0, 2), cfg, randn({1, 4, 2}, at::kFloat, 87),
                     randn({1, 2, 2}, at::kFloat, 88));
       },
       {"prev_sq and prev_sk are read by the causal selection only", "\"stratified\""}},
      {"select_halo_levels",
       [] {
         const at::Tensor s = randn({1, 4, 448}, at::kFloat, 89);
         ops::select(s, s.narrow(1, 0, 2), causal_cfg(), randn({1, 4, 2}, at::kFloat, 90),
                     randn({1, 2, 3}, at::kFloat, 91));
       },
       {"lighthouse::_select: prev_sk must be [B, Hkv, levels - 1] = [1, 2, 2]", "[1, 2, 3]"}},
      {"select_halo_dtype",
       [] {
         const at::Tensor s = randn({1, 4, 448}, at::kFloat, 92);
         ops::select(s, s.narrow(1, 0, 2), causal_cfg(), randn({1, 4, 2}, at::kDouble, 93),
                     randn({1, 2, 2}, at::kFloat, 94));
       },
       {"lighthouse::_select: prev_sq must be float32", "Double"},
       true},
      {"pool_score_rank",
       [] {
         ops::pool_score(randn({256, 4, 8}, at::kDouble, 75), 3, 2, true, true);
       },
       {"lighthouse::_pool_score: x must be non-empty [B, N, Hx, D]"}},
      {"pool_score_qkv_v_heads",
       [] {
         const at::Tensor q = randn({1, 256, 4, 8}, at::kDouble, 82);
         ops::pool_score_qkv(q, q.narrow(2, 0, 2), q, 3, 2, true);
       },
       {"lighthouse::_pool_score_qkv: v sizes must equal k sizes"}},
      {"pool_score_qkv_k_dtype",
       [] {
         const at::Tensor q = randn({1, 256, 4, 8}, at::kDouble, 83);
         ops::pool_score_qkv(q, q.to(at::kFloat), q, 3, 2, true);
       },
       {"lighthouse::_pool_score_qkv: k dtype must equal q dtype"},
       true},
      {"pool_score_qkv_no_v",
       [] {
         const at::Tensor q = randn({1, 256, 4, 8}, at::kDouble, 84);
         ops::pool_score_qkv(q, q, at::Tensor(), 3, 2, true);
       },
       {"lighthouse::_pool_score_qkv: v must be a defined tensor"}},
      {"gather_backward_kv_heads",
       [] {
         ops::gather_backward(randn({1, 4, 128, 8}, at::kDouble, 76),
                              at::full({1, 4, 448}, -1, at::kLong), 3, 2, 0);
       },
       {"lighthouse::_gather_backward", "kv_heads = 0"}},
      {"gather_backward_qkv_grad_v_shape",
       [] {
         const at::Tensor g = randn({1, 4, 128, 8}, at::kDouble, 78);
         ops::gather_backward_qkv(g, g, randn({1, 4, 127, 8}, at::kDouble, 79),
                                  at::full({1, 4, 448}, -1, at::kLong), 3, 2, 2);
       },
       {"lighthouse::_gather_backward_qkv: grad_v must have grad_q's shape"}},
      {"gather_backward_qkv_grad_k_dtype",
       [] {
         const at::Tensor g = randn({1, 4, 128, 8}, at::kDouble, 80);
         ops::gather_backward_qkv(g, g.to(at::kFloat), g, at::full({1, 4, 448}, -1, at::kLong),
                                  3, 2, 2);
       },
       {"lighthouse::_gather_backward_qkv: grad_k must have grad_q's dtype"},
       true},
      {"gather_backward_qkv_kv_heads",
       [] {
         const at::Tensor g = randn({1, 4, 128, 8}, at::kDouble, 81);
         ops::gather_backward_qkv(g, g, g, at::full({1, 4, 448}, -1, at::kLong), 3, 2, 3);
       },
       {"lighthouse::_gather_backward_qkv", "kv_heads = 3"}},
      {"scatter_backward_slot_out_of_range",
       [] {
         ops::scatter_backward(randn({1, 258, 4, 8}, at::kDouble, 77),
                               at::full({1, 4, 128}, 10000, at::kLong), 3, 2);
       },
       {"slots values must lie in [0, 450)"}},
  };
}

class BadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadInput, RaisesNamedError) {
  const BadCase& c = GetParam();
  try {
    c.call();
    ADD_FAILURE() << c.name << ": no error raised";
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    if (c.type_error)
      EXPECT_NE(dynamic_cast<const c10::TypeError*>(&e), nullptr) << msg;
    else
      EXPECT_NE(dynamic_cast<const c10::ValueError*>(&e), nullptr) << msg;
    for (const std::string& n : c.needles)
      EXPECT_NE(msg.find(n), std::string::npos)
          << "message \"" << msg << "\" lacks \"" << n << "\"";
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, BadInput, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// The same inputs with every check passing run fine (the cases above fail only by their edit).
TEST(BadInputBaseline, ValidProblemRuns) {
  const Inputs in = valid();
  EXPECT_EQ(attention(in.q, in.k, in.v, kShape.cfg()).sizes(), in.q.sizes());
  EXPECT_EQ(dense_attention(in.q, in.k, in.v).sizes(), in.q.sizes());
  Plan pl = plan(in.q, in.k, kShape.cfg());
  EXPECT_EQ(pl.slots.size(2), kShape.S());
  EXPECT_EQ(attention(in.q, in.k, in.v, pl, kShape.cfg()).sizes(), in.q.sizes());
  attend_strings("norm", "math");
  attend_strings("norm", "auto", "causal");
  dense_string("auto");
}

// Lengths and budgets that were errors before any N was served (SPEC.md §2) now run: N not a
// multiple of p^(L-1) T, C < m, N shorter than the coarsest window, a huge topk.
TEST(BadInputBaseline, FormerGeometryErrorsRun) {
  const std::vector<std::pair<Inputs, Config>> runs = {
      {sized(260, 8), cfg_with(3, 2, 16, 8)},
      {valid(), cfg_with(3, 2, 128, 8)},
      {sized(8, 8), cfg_with(5, 2, 16, 8)},
      {valid(), cfg_with(3, 2, int64_t{1} << 62, 2)}};
  for (const auto& [in, cfg] : runs) {
    const at::Tensor o = attention(in.q, in.k, in.v, cfg);
    EXPECT_EQ(o.sizes(), in.q.sizes());
    EXPECT_TRUE(o.isfinite().all().item<bool>());
  }
}

}  // namespace
}  // namespace lighthouse::test
