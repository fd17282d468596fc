// `lighthouse bench leak`: how much the op's outputs at positions <= t change when the inputs
// after t change (SPEC.md §8.3). Selection reads the scores of the whole tile, so with the plan
// recomputed from the perturbed inputs, earlier outputs of the same tile move; with the plan
// held fixed, and for dense attention, they must not. Random q, k, v (CPU float64 by default);
// for every tile and every cut offset inside a tile, the inputs at positions > t are redrawn.
// With --selection causal (SPEC.md §12) the plan itself is causal: every count is exactly zero.
#include <torch/torch.h>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "lighthouse/lighthouse.h"

namespace lighthouse::cli {
namespace {

// The leak is a property of the published rule: measured unless --selection causal is given
// (the default everywhere else is causal, which has none).
Config published_rule(Config c) {
  c.selection = Selection::Stratified;
  return c;
}

struct LeakArgs {
  int64_t batch = 1, n = 2048, heads = 4, kv_heads = 2, dim = 32;  // the tiny config's layer
  int64_t seed = 0;
  ConfigFlags keys;  // lighthouse.* keys over the tiny run's (train::tiny_model())
  Config lh = published_rule(train::tiny_model().lighthouse);
  std::vector<double> cuts = {0.125, 0.25, 0.5, 0.75, 0.875, 1.0};
  std::string dtype = "float64", json;
};

// One (mode, cut offset) row, aggregated over every tile and batch element.
struct LeakRow {
  std::string mode;        // lighthouse (plan recomputed) | fixed-plan | dense
  double cut = 0;          // cut offset as a fraction of the tile
  int64_t offset = 0;      // cut offset in base positions: t = tile start + offset - 1
  int64_t positions = 0;   // positions of the cut's tile at or before t, summed over cases
  int64_t affected = 0;    // of those, positions whose output changed beyond the tolerance
  int64_t differ = 0;      // positions <= t (any tile) whose output is not bitwise the same
  int64_t earlier = 0;     // affected positions in earlier tiles (the method leaks within a tile)
  double rel_change = 0;   // ||o' - o|| / ||o|| over the tile's positions <= t, worst case
  double max_rel = 0;      // max over positions <= t of ||o'_t - o_t|| / mean_t ||o_t||
  int64_t reach = 0;       // max distance t - t' of an affected position t'
};

nlohmann::json to_json(const LeakRow& r) {
  return {{"mode", r.mode},
          {"cut", r.cut},
          {"offset", r.offset},
          {"positions", r.positions},
          {"affected", r.affected},
          {"affected_fraction", r.positions > 0 ? double(r.affected) / double(r.positions) : 0.0},
          {"affected_earlier_tiles", r.earlier},
          {"bitwise_different", r.differ},
          {"rel_change", r.rel_change},
          {"max_rel_change", r.max_rel},
          {"reach", r.reach}};
}

int run_leak(const LeakArgs& a) {
  const Config& cfg = a.lh;
  std::string err;
  Geometry g;
  if (!make_geometry(cfg, a.n, &g, &err)) throw std::invalid_argument(err);
  if (a.heads % a.kv_heads != 0)
    throw std::invalid_argument("--kv-heads must divide --heads = " + std::to_string(a.heads) +
                                ", got " + std::to_string(a.kv_heads));
  const at::ScalarType dtype = parse_dtype(a.dtype);
  if (dtype != at::kDouble && dtype != at::kFloat)
    throw std::invalid_argument("--dtype must be float64 or float32, got " + a.dtype);
  // Base positions per tile (SPEC.md §2: the last tile may be shorter, a tail may follow;
  // a sequence without a whole coarsest window is one span).
  const int64_t tiles = std::max<int64_t>(g.tiles, 1);
  const int64_t tile = g.tiles > 0 ? g.C * g.window[g.c] : a.n;
  std::vector<int64_t> offsets;
  for (const double c : a.cuts) {
    if (!(c > 0 && c <= 1))
      throw std::invalid_argument("--cuts: every value must be in (0, 1], got " +
                                  std::to_string(c));
    offsets.push_back(std::max<int64_t>(1, static_cast<int64_t>(c * double(tile) + 0.5)));
  }
  if (!a.json.empty()) check_output_file("--json", a.json);

  std::cout << "leak: N=" << a.n << " L=" << g.L << " p=" << g.p << " k=" << g.k << " m=" << g.m
            << "  T=" << g.T << ", " << g.tiles << " tiles of " << tile << " positions;  B=" << a.batch
            << " H=" << a.heads << " Hkv=" << a.kv_heads << " D=" << a.dim << " " << a.dtype
            << " cpu, seed " << a.seed << ", selection " << selection_name(cfg.selection) << "\n"
            << "inputs at positions > t redrawn; outputs at positions <= t compared\n";

  torch::manual_seed(a.seed);
  const auto opts = torch::TensorOptions().dtype(dtype);
  const at::Tensor q = torch::randn({a.batch, a.n, a.heads, a.dim}, opts);     // [B, N, H, D]
  const at::Tensor k = torch::randn({a.batch, a.n, a.kv_heads, a.dim}, opts);  // [B, N, Hkv, D]
  const at::Tensor v = torch::randn({a.batch, a.n, a.kv_heads, a.dim}, opts);  // [B, N, Hkv, D]
  torch::NoGradGuard no_grad;
  const Plan fixed = plan(q, k, cfg);
  const at::Tensor o_lh = attention(q, k, v, fixed, cfg);  // [B, N, H, D]
  const at::Tensor o_dense = dense_attention(q, k, v);     // [B, N, H, D]
  const double eps = dtype == at::kDouble ? std::numeric_limits<double>::epsilon()
                                          : std::numeric_limits<float>::epsilon();

  const std::vector<std::string> modes = {"lighthouse", "fixed-plan", "dense"};
  std::vector<LeakRow> rows;
  for (const auto& m : modes)
    for (size_t c = 0; c < offsets.size(); ++c) rows.push_back({m, a.cuts[c], offsets[c]});
  Progress progress("bench leak", tiles * static_cast<int64_t>(offsets.size()), "cuts");
  int64_t done = 0;
  for (int64_t j = 0; j < tiles; ++j) {
    for (size_t c = 0; c < offsets.size(); ++c) {
      const int64_t t = std::min(j * tile + offsets[c], a.n) - 1;  // last position kept
      const int64_t after = a.n - t - 1;
      at::Tensor q2 = q.clone(), k2 = k.clone(), v2 = v.clone();
      if (after > 0) {
        q2.narrow(1, t + 1, after).copy_(torch::randn({a.batch, after, a.heads, a.dim}, opts));
        k2.narrow(1, t + 1, after).copy_(torch::randn({a.batch, after, a.kv_heads, a.dim}, opts));
        v2.narrow(1, t + 1, after).copy_(torch::randn({a.batch, after, a.kv_heads, a.dim}, opts));
      }
      const at::Tensor outs[3][2] = {{o_lh, attention(q2, k2, v2, cfg)},
                                     {o_lh, attention(q2, k2, v2, fixed, cfg)},
                                     {o_dense, dense_attention(q2, k2, v2)}};
      for (size_t mi = 0; mi < modes.size(); ++mi) {
        LeakRow& r = rows[mi * offsets.size() + c];
        const at::Tensor o = outs[mi][0].narrow(1, 0, t + 1);                // [B, t+1, H, D]
        const at::Tensor d = outs[mi][1].narrow(1, 0, t + 1) - o;            // [B, t+1, H, D]
        const double tol = 1e3 * eps * o.pow(2).mean().sqrt().item<double>();
        const at::Tensor dmax = d.abs().amax({2, 3});                        // [B, t+1]
        const at::Tensor changed = dmax.gt(tol);                             // [B, t+1]
        const at::Tensor o2 = outs[mi][1].narrow(1, 0, t + 1);               // [B, t+1, H, D]
        r.differ += o2.ne(o).flatten(2).any(-1).sum().item<int64_t>();
        const at::Tensor on = o.flatten(2).norm(2, -1);                      // [B, t+1]
        const at::Tensor rel = d.flatten(2).norm(2, -1) / on.mean();         // [B, t+1]
        const int64_t start = j * tile;
        r.positions += a.batch * (t + 1 - start);
        r.affected += changed.narrow(1, start, t + 1 - start).sum().item<int64_t>();
        if (start > 0) r.earlier += changed.narrow(1, 0, start).sum().item<int64_t>();
        const at::Tensor dt = d.narrow(1, start, t + 1 - start);
        const at::Tensor ot = o.narrow(1, start, t + 1 - start);
        r.rel_change = std::max(r.rel_change, dt.norm().item<double>() / ot.norm().item<double>());
        r.max_rel = std::max(r.max_rel, rel.max().item<double>());
        const at::Tensor any = changed.any(0);  // [t+1]
        if (any.any().item<bool>()) {
          const int64_t first = any.nonzero().min().item<int64_t>();
          r.reach = std::max(r.reach, t - first);
        }
      }
      progress.update(++done, "tile " + std::to_string(j));
    }
  }

  std::cout << std::left << std::setw(12) << "mode" << std::right << std::setw(8) << "cut"
            << std::setw(8) << "t-t0" << std::setw(12) << "affected" << std::setw(14)
            << "rel change" << std::setw(14) << "max rel" << std::setw(8) << "reach"
            << std::setw(10) << "earlier" << std::setw(9) << "bitwise"
            << "\n";
  for (const auto& r : rows) {
    const double frac = r.positions > 0 ? double(r.affected) / double(r.positions) : 0.0;
    std::cout << std::left << std::setw(12) << r.mode << std::right << std::fixed
              << std::setprecision(3) << std::setw(8) << r.cut << std::setw(8) << r.offset
              << std::setw(12) << frac << std::scientific << std::setprecision(2) << std::setw(14)
              << r.rel_change << std::setw(14) << r.max_rel << std::setw(8) << r.reach
              << std::setw(10) << r.earlier << std::setw(9) << r.differ << "\n";
  }
  std::cout << "cut: t as a fraction of the tile (t - t0: its offset from the tile start); "
               "affected: fraction of the tile's positions <= t whose output changed (max "
               "|delta| > 1e3 eps rms(o)); rel change: worst ||delta|| / ||o|| over them; max "
               "rel: largest ||delta_t|| / mean ||o_t||; reach: farthest affected position "
               "before t; earlier: affected positions in earlier tiles; bitwise: positions <= t "
               "(every tile, summed over cuts) whose output is not bitwise identical\n";

  if (!a.json.empty()) {
    nlohmann::json j;
    j["geometry"] = {{"N", a.n}, {"L", g.L}, {"p", g.p}, {"k", g.k}, {"m", g.m},
                     {"T", g.T}, {"C", g.C}, {"S", g.S}, {"tile", tile}};
    j["inputs"] = {{"B", a.batch},
                   {"H", a.heads},
                   {"Hkv", a.kv_heads},
                   {"D", a.dim},
                   {"dtype", a.dtype},
                   {"device", "cpu"},
                   {"seed", a.seed},
                   {"selection", selection_name(a.lh.selection)}};
    j["rows"] = nlohmann::json::array();
    for (const auto& r : rows) j["rows"].push_back(to_json(r));
    write_output_file("--json", a.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

void add_bench_leak(CLI::App& bench) {
  auto a = std::make_shared<LeakArgs>();
  CLI::App* sub = bench.add_subcommand(
      "leak", "How much outputs at positions <= t change when inputs after t change");
  sub->add_option("--batch", a->batch, "batch size B")->check(positive_int());
  sub->add_option("-n,--seq-len", a->n, "sequence length N")->check(positive_int());
  sub->add_option("--heads", a->heads, "query heads H")->check(positive_int());
  sub->add_option("--kv-heads", a->kv_heads, "KV heads Hkv")->check(positive_int());
  sub->add_option("--dim", a->dim, "head dim D")->check(positive_int());
  const auto reads = add_lighthouse_key_flags(*sub, a->keys, /*scorer=*/false);
  sub->add_option("--dtype", a->dtype, "float64|float32")
      ->check(CLI::IsMember({"float64", "float32"}));
  sub->add_option("--cuts", a->cuts, "cut offsets as fractions of a tile, in (0, 1]")
      ->delimiter(',');
  sub->add_option("--seed", a->seed, "random seed")->check(non_negative_int());
  sub->add_option("--json", a->json, "write the rows as JSON to this file");
  sub->callback([a, reads] {
    a->lh = lighthouse_keys(a->lh, overrides(a->keys), "bench leak",
                            reads);
    const int rc = run_leak(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
    throw CLI::Success();  // done: the parent `bench` (op benchmark) must not run as well
  });
}

}  // namespace lighthouse::cli
