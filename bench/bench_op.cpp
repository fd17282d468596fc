// `lighthouse bench`: plan geometry and the op's latency against dense causal SDPA, forward
// and forward+backward, on random inputs (medians of repeats after warm-up). On the CPU here;
// `--device cuda` runs the CUDA sweep of bench_cuda.cpp.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "bench/bench.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "lighthouse/lighthouse.h"

namespace lighthouse::cli {

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "float64") return at::kDouble;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float16") return at::kHalf;
  throw std::invalid_argument("--dtype must be float32|float64|bfloat16|float16, got " + s);
}

namespace {

void sync(const at::Device& dev) {
  if (dev.is_cuda()) torch::cuda::synchronize();
}

struct Case {
  std::string name;
  double median_ms = 0;
};

int run_bench(const BenchArgs& a) {
  const Config& cfg = a.lh;
  std::string err;
  Geometry g;
  if (!make_geometry(cfg, a.n, &g, &err)) throw std::invalid_argument(err);
  const int64_t hkv = a.kv_heads > 0 ? a.kv_heads : a.heads;
  if (a.heads % hkv != 0) throw std::invalid_argument("--heads must be a multiple of --kv-heads");
  const at::Device dev(a.device);
  const auto opts = torch::TensorOptions().dtype(parse_dtype(a.dtype)).device(dev);

  std::cout << "geometry: N=" << a.n << " L=" << g.L << " p=" << g.p << " k=" << g.k
            << " m=" << g.m << "  tiles T=" << g.T << "  C=" << g.C << " (" << g.tiles
            << " tiles, the last " << g.C_last << ", tail " << g.tail << ")  S=" << g.S
            << "  S/N=" << std::fixed << std::setprecision(4) << double(g.S) / double(a.n)
            << "  pyramid P=" << g.P << "\n";
  std::cout << "inputs: B=" << a.batch << " H=" << a.heads << " Hkv=" << hkv << " D=" << a.dim
            << " dtype=" << a.dtype << " device=" << a.device << "\n";

  torch::manual_seed(a.seed);
  auto q = torch::randn({a.batch, a.n, a.heads, a.dim}, opts).requires_grad_();
  auto k = torch::randn({a.batch, a.n, hkv, a.dim}, opts).requires_grad_();
  auto v = torch::randn({a.batch, a.n, hkv, a.dim}, opts).requires_grad_();
  auto dout = torch::randn({a.batch, a.n, a.heads, a.dim}, opts);

  using Fn = std::function<at::Tensor()>;
  const Fn dense = [&] { return dense_attention(q, k, v); };
  const Fn light = [&] { return attention(q, k, v, cfg); };
  {  // verify before timing: finite outputs of the right shape
    torch::NoGradGuard ng;
    auto o = light();
    TORCH_CHECK(o.sizes() == q.sizes() && o.isfinite().all().item<bool>(),
                "lighthouse output is not finite");
  }

  const int64_t per_case = a.warmup + a.repeats;
  Progress progress("bench", 4 * per_case, "runs");
  int64_t done = 0;
  auto time_case = [&](const std::string& name, const Fn& fn, bool backward) {
    std::vector<double> ms;
    for (int64_t r = 0; r < per_case; ++r) {
      sync(dev);
      const auto t0 = std::chrono::steady_clock::now();
      if (backward) {
        fn().backward(dout);
      } else {
        torch::NoGradGuard ng;
        fn();
      }
      sync(dev);
      const double el =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r >= a.warmup) ms.push_back(el);
      q.mutable_grad() = at::Tensor();
      k.mutable_grad() = at::Tensor();
      v.mutable_grad() = at::Tensor();
      progress.update(++done, name);
    }
    std::sort(ms.begin(), ms.end());
    return Case{name, ms[ms.size() / 2]};
  };
  std::vector<Case> cases = {time_case("dense fwd", dense, false),
                             time_case("lighthouse fwd", light, false),
                             time_case("dense fwd+bwd", dense, true),
                             time_case("lighthouse fwd+bwd", light, true)};

  std::cout << std::left << std::setw(22) << "case" << std::right << std::setw(14) << "median ms"
            << std::setw(12) << "speedup" << "\n";
  for (size_t i = 0; i < cases.size(); ++i) {
    const double base = cases[i % 2 == 0 ? i : i - 1].median_ms;
    std::cout << std::left << std::setw(22) << cases[i].name << std::right << std::setw(14)
              << std::setprecision(3) << cases[i].median_ms << std::setw(11)
              << std::setprecision(2) << base / cases[i].median_ms << "x\n";
  }
  if (!a.json.empty()) {
    nlohmann::json j;
    j["geometry"] = {{"N", a.n}, {"L", g.L}, {"p", g.p}, {"k", g.k}, {"m", g.m},
                     {"T", g.T}, {"C", g.C}, {"tiles", g.tiles}, {"C_last", g.C_last},
                     {"tail", g.tail}, {"S", g.S}};
    j["inputs"] = {{"B", a.batch}, {"H", a.heads}, {"Hkv", hkv}, {"D", a.dim},
                   {"dtype", a.dtype}, {"device", a.device}};
    for (const auto& c : cases) j["median_ms"][c.name] = c.median_ms;
    write_output_file("--json", a.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

void add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* sub = app.add_subcommand("bench", "Time the Lighthouse op against dense causal SDPA");
  sub->add_option("--batch", a->batch, "batch size B")->check(positive_int());
  sub->add_option("-n,--seq-len", a->n, "sequence length N")->check(positive_int());
  sub->add_option("--heads", a->heads, "query heads H")->check(positive_int());
  sub->add_option("--kv-heads", a->kv_heads, "KV heads Hkv (default H)")->check(non_negative_int());
  sub->add_option("--dim", a->dim, "head dim D")->check(positive_int());
  const auto reads = add_lighthouse_key_flags(*sub, a->keys, /*scorer=*/true);
  sub->add_option("--dtype", a->dtype, "float32|float64|bfloat16|float16")
      ->check(CLI::IsMember({"float32", "float64", "bfloat16", "float16"}));
  sub->add_option("--device", a->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--warmup", a->warmup, "warm-up runs per case")->check(non_negative_int());
  sub->add_option("--repeats", a->repeats, "timed runs per case")->check(positive_int());
  sub->add_option("--seed", a->seed, "random seed")->check(non_negative_int());
  sub->add_option("--json", a->json, "write results as JSON to this file");
  // The CUDA sweep's own flags: an error with --device cpu rather than silently unused.
  const std::vector<CLI::Option*> cuda_only = {
      sub->add_option("--seq-lens", a->seq_lens,
                      "CUDA sweep: sequence lengths (default: --seq-len)")
          ->delimiter(',')
          ->check(positive_int()),
      sub->add_option("--topks", a->topks, "CUDA sweep: k per sequence length, or one for all")
          ->delimiter(',')
          ->check(positive_int()),
      sub->add_option("--markdown", a->markdown, "CUDA sweep: write the report as Markdown"),
      sub->add_option("--case-budget", a->case_budget_s,
                      "CUDA sweep: seconds of timed runs per case before repeats drop (>= 2 runs)")
          ->check(positive_number()),
      sub->add_option("--verify-max-n", a->verify_max_n,
                      "CUDA sweep: verify Lighthouse up to this N (0: every N)")
          ->check(non_negative_int())};
  sub->callback([a, cuda_only, reads] {
    a->lh = lighthouse_keys(bench_preset(), overrides(a->keys), "bench", reads);
    if (a->device != "cuda")
      for (const CLI::Option* o : cuda_only)
        if (o->count() > 0)
          throw std::invalid_argument(o->get_name() +
                                      ": only the CUDA sweep reads it (add --device cuda)");
    if (!a->json.empty()) check_output_file("--json", a->json);
    if (!a->markdown.empty()) check_output_file("--markdown", a->markdown);
#ifdef LIGHTHOUSE_WITH_CUDA
    const int rc = a->device == "cuda" ? run_cuda_bench(*a, "") : run_bench(*a);
#else
    if (a->device == "cuda") throw std::invalid_argument("--device cuda: built without CUDA");
    const int rc = run_bench(*a);
#endif
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace lighthouse::cli
