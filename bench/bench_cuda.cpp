// The CUDA sweep of `lighthouse bench --device cuda`: for every sequence length, dense causal
// SDPA (cuDNN and flash) and Lighthouse (inner SDPA cuDNN and flash), forward and
// forward+backward; peak memory of one call with inputs and gradients; Lighthouse's per-stage
// breakdown with the bytes each stage must move; a device-to-device copy measured in the same
// run as the bandwidth yardstick. Every point is verified before it is timed. Timing: device
// events around each call, warm-up first, the median of repeats (Lighthouse alternating with
// its inner SDPA alone), inputs rotated over sets together larger than L2.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>
#include <iomanip>
#include <iostream>

#include "bench/bench.h"
#include "cli/progress.h"
#include "lighthouse/lighthouse.h"
#include "lighthouse/stages.h"

namespace lighthouse::cli {
namespace {

struct InputSet {
  at::Tensor q, k, v;  // [B, N, H, D], [B, N, Hkv, D] x2, leaves requiring grad
  at::Tensor dout;     // [B, N, H, D]
};

struct Dims {
  int64_t B, N, H, Hkv, D;
};

InputSet make_set(const Dims& d, const at::TensorOptions& opts) {
  InputSet s;
  s.q = torch::randn({d.B, d.N, d.H, d.D}, opts).requires_grad_();
  s.k = torch::randn({d.B, d.N, d.Hkv, d.D}, opts).requires_grad_();
  s.v = torch::randn({d.B, d.N, d.Hkv, d.D}, opts).requires_grad_();
  s.dout = torch::randn({d.B, d.N, d.H, d.D}, opts);
  return s;
}

void clear_grads(const InputSet& s) {
  for (at::Tensor t : {s.q, s.k, s.v}) t.mutable_grad().reset();
}

using Fn = std::function<void(const InputSet&)>;

double elapsed_ms(const std::function<void()>& body) {
  at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
  const auto stream = at::cuda::getCurrentCUDAStream();
  start.record(stream);
  body();
  stop.record(stream);
  stop.synchronize();
  return start.elapsed_time(stop);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// One call on set 0 with nothing else allocated: its time (it is also the first warm-up) and
// the peak of allocated bytes, which counts the inputs and, after a backward, the gradients.
double first_call(const Fn& fn, const InputSet& s, bool forward_only, CaseResult* out) {
  torch::cuda::synchronize();
  c10::cuda::CUDACachingAllocator::emptyCache();
  const auto dev = at::cuda::current_device();
  c10::cuda::CUDACachingAllocator::resetPeakStats(dev);
  const double ms = elapsed_ms([&] { fn(s); });
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(dev);
  double peak = static_cast<double>(
      stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak);
  if (forward_only) peak -= static_cast<double>(s.dout.nbytes());  // not an input of a forward
  clear_grads(s);
  out->peak_gib = peak / kGiB;
  return ms;
}

// Cases timed in alternation (one call of each in turn), so all of them see the same clocks
// and heat: one case alone, or the op beside its inner SDPA alone, whose difference is the
// share outside the SDPA. Warm-up (the first call already was one; cheap cases get `warmup`
// more), then the medians of up to `repeats` timed rounds, at least 2, fewer when a round is
// slow (case budget, shared by the cases; first_ms: the first case's first call).
void time_cases(const std::vector<std::pair<const Fn*, CaseResult*>>& cases,
                const std::vector<InputSet>& sets, double first_ms, const BenchArgs& a) {
  const double budget_ms = a.case_budget_s * 1e3;
  const double round_ms = static_cast<double>(cases.size()) * first_ms;
  if (round_ms * a.warmup < budget_ms)
    for (int64_t i = 0; i < a.warmup; ++i)
      for (const auto& c : cases) {
        (*c.first)(sets[(i + 1) % sets.size()]);
        clear_grads(sets[(i + 1) % sets.size()]);
      }
  const int64_t reps = std::clamp<int64_t>(static_cast<int64_t>(budget_ms / std::max(round_ms, 1e-3)),
                                           2, std::max<int64_t>(a.repeats, 2));
  std::vector<std::vector<double>> ms(cases.size());
  for (int64_t r = 0; r < reps; ++r) {
    const InputSet& s = sets[r % sets.size()];
    for (size_t c = 0; c < cases.size(); ++c) {
      ms[c].push_back(elapsed_ms([&] { (*cases[c].first)(s); }));
      clear_grads(s);
    }
  }
  for (size_t c = 0; c < cases.size(); ++c) {
    cases[c].second->median_ms = median(ms[c]);
    cases[c].second->repeats = reps;
  }
}

// Device-to-device copy of 1 GiB: (bytes read + bytes written) / time.
double copy_gbps() {
  const int64_t n = int64_t{1} << 28;  // floats
  auto opts = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
  at::Tensor src = at::randn({n}, opts), dst = at::empty({n}, opts);
  for (int i = 0; i < 3; ++i) dst.copy_(src);
  std::vector<double> ms;
  for (int i = 0; i < 20; ++i) ms.push_back(elapsed_ms([&] { dst.copy_(src); }));
  return 2.0 * static_cast<double>(src.nbytes()) / (median(ms) * 1e-3) / 1e9;
}

// Lighthouse stage by stage (inner SDPA `backend`), each stage between two events; medians.
std::vector<StageResult> time_stages(const std::vector<InputSet>& sets, const Config& cfg,
                                     const Geometry& g, const Dims& d, int64_t repeats) {
  using namespace lighthouse::stages;
  const std::vector<std::string> names = {"pool+score",   "select",         "gather",
                                          "inner SDPA fwd", "scatter",      "scatter bwd",
                                          "inner SDPA bwd", "gather bwd"};
  std::vector<std::vector<double>> ms(names.size());
  const auto stream = at::cuda::getCurrentCUDAStream();
  const int64_t L = cfg.levels, p = cfg.pool;
  for (int64_t r = 0; r < repeats + 1; ++r) {  // the first round is a warm-up
    const InputSet& s = sets[r % sets.size()];
    const at::Tensor q = s.q.detach(), k = s.k.detach(), v = s.v.detach();
    std::vector<at::cuda::CUDAEvent> ev;
    for (size_t i = 0; i <= names.size(); ++i) ev.emplace_back(cudaEventDefault);
    ev[0].record(stream);
    // [B, P1, H, D], [B, P1, Hkv, D] x 2, [B, H, P], [B, Hkv, P]: one launch
    auto [pq, pk, pv, sq, sk] = pool_score_qkv(q, k, v, L, p, true);
    ev[1].record(stream);
    auto [slots, inverse] = select(sq, sk, cfg);  // [B, H, S], [B, H, P]
    ev[2].record(stream);
    at::Tensor qt = gather(q, pq, slots, inverse, L, p).requires_grad_();  // [B, H, S, D]
    at::Tensor kt = gather(k, pk, slots, inverse, L, p).requires_grad_();  // [B, H, S, D]
    at::Tensor vt = gather(v, pv, slots, inverse, L, p).requires_grad_();  // [B, H, S, D]
    ev[3].record(stream);
    const at::Tensor ot = sdpa_causal(qt, kt, vt, cfg.backend);  // [B, H, S, D]
    ev[4].record(stream);
    const at::Tensor o = scatter(ot.detach(), slots, inverse, L, p);  // [B, N, H, D]
    ev[5].record(stream);
    const at::Tensor dot = scatter_backward(s.dout, slots, L, p);  // [B, H, S, D]
    ev[6].record(stream);
    const auto grads = torch::autograd::grad({ot}, {qt, kt, vt}, {dot});
    ev[7].record(stream);
    // dq [B, N, H, D], dk and dv [B, N, Hkv, D]: one launch
    [[maybe_unused]] const auto dx =
        gather_backward_qkv(grads[0], grads[1], grads[2], inverse, L, p, d.Hkv);
    ev[8].record(stream);
    ev[8].synchronize();
    if (r == 0) continue;
    for (size_t i = 0; i < names.size(); ++i) ms[i].push_back(ev[i].elapsed_time(ev[i + 1]));
  }
  // Fewest bytes each stage must move: every input read once, every output written once.
  const double es = static_cast<double>(at::elementSize(sets[0].q.scalar_type()));
  const double B = d.B, N = d.N, H = d.H, Hkv = d.Hkv, D = d.D, S = g.S, P = g.P, P1 = g.P1;
  const double heads = H + 2 * Hkv, sub = 3 * B * H * S * D * es;  // q, k, v; gathered q~, k~, v~
  const double bytes[] = {
      B * N * heads * D * es + B * P1 * heads * D * es + B * (H + Hkv) * P * 4,  // pool+score
      B * H * (P + S) * 8 + B * (H + Hkv) * g.Nc * 4,                            // select
      2 * sub + 3 * B * H * S * 8,                                                // gather
      0,
      B * H * S * D * es + B * H * P * 8 + B * N * H * D * es,                    // scatter
      B * N * H * D * es + B * H * S * 8 + B * H * S * D * es,                    // scatter bwd
      0,
      sub + B * H * P * 8 + B * N * heads * D * es};                              // gather bwd
  const double sdpa_fwd_flops = 2.0 * B * H * S * S * D;  // causal: half of 4 S^2 D
  std::vector<StageResult> out;
  for (size_t i = 0; i < names.size(); ++i) {
    StageResult st{names[i], median(ms[i]), bytes[i], 0};
    if (names[i] == "inner SDPA fwd") st.flops = sdpa_fwd_flops;
    if (names[i] == "inner SDPA bwd") st.flops = 2.5 * sdpa_fwd_flops;
    out.push_back(st);
  }
  return out;
}

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor bd = b.to(at::kFloat);
  return (a.to(at::kFloat) - bd).abs().max().item<double>() /
         std::max(bd.abs().max().item<double>(), 1e-30);
}

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

BenchPoint run_point(const BenchArgs& a, int64_t N, int64_t topk, const at::TensorOptions& opts) {
  Config cfg = a.lh;  // the norm scorer; `dil` the dilated one when a.lh asks for it
  cfg.topk = topk;
  cfg.scorer = Scorer::Norm;
  const bool dilated = a.lh.scorer == Scorer::Dilated;
  std::string err;
  Config dil = cfg;
  dil.scorer = Scorer::Dilated;
  Geometry g;
  if (!make_geometry(dilated ? dil : cfg, N, &g, &err)) throw std::invalid_argument(err);
  const Dims d{a.batch, N, a.heads, a.kv_heads > 0 ? a.kv_heads : a.heads, a.dim};
  BenchPoint pt;
  pt.N = N;
  pt.k = topk;
  pt.S = g.S;
  std::cout << "\n== N = " << N << "  k = " << topk << "  S = " << g.S << "  (S/N = "
            << std::setprecision(4) << double(g.S) / N << ")\n" << std::flush;

  std::vector<InputSet> sets = {make_set(d, opts)};
  if (a.verify_max_n == 0 || N <= a.verify_max_n) {
    // The fp32 reference keeps about 12 copies of q in memory: beyond B*N*H*D = 2^29 it runs on
    // the first heads only.
    const int64_t group = d.H / d.Hkv;
    int64_t hkv = d.Hkv;
    while (hkv > 1 && d.B * N * hkv * group * d.D > (int64_t{1} << 29)) hkv /= 2;
    const int64_t h = hkv * group;
    auto heads = [](const at::Tensor& t, int64_t n) {
      return t.detach().narrow(2, 0, n).contiguous();
    };
    if (h < d.H) std::cout << "  verify on heads [0, " << h << ") of " << d.H << "\n";
    pt.verify = verify_lighthouse(heads(sets[0].q, h), heads(sets[0].k, hkv),
                                  heads(sets[0].v, hkv), heads(sets[0].dout, h),
                                  dilated ? dil : cfg);
    pt.verified = true;
    c10::cuda::CUDACachingAllocator::emptyCache();
  }

  Config lh_cudnn = cfg, lh_flash = cfg, dil_cudnn = dil;
  lh_cudnn.backend = SdpaBackend::Cudnn;
  lh_flash.backend = SdpaBackend::Flash;
  dil_cudnn.backend = SdpaBackend::Cudnn;
  auto dense = [](SdpaBackend b, bool backward) -> Fn {
    return [b, backward](const InputSet& s) {
      if (backward) return dense_attention(s.q, s.k, s.v, b).backward(s.dout);
      torch::NoGradGuard ng;
      dense_attention(s.q, s.k, s.v, b);
    };
  };
  auto light = [](const Config& c, bool backward) -> Fn {
    return [c, backward](const InputSet& s) {
      if (backward) return attention(s.q, s.k, s.v, c).backward(s.dout);
      torch::NoGradGuard ng;
      attention(s.q, s.k, s.v, c);
    };
  };
  std::vector<std::pair<std::string, Fn>> cases = {
      {"dense_cudnn_fwd", dense(SdpaBackend::Cudnn, false)},
      {"dense_cudnn_fwdbwd", dense(SdpaBackend::Cudnn, true)},
      {"dense_flash_fwd", dense(SdpaBackend::Flash, false)},
      {"dense_flash_fwdbwd", dense(SdpaBackend::Flash, true)},
      {"lh_cudnn_fwd", light(lh_cudnn, false)},
      {"lh_cudnn_fwdbwd", light(lh_cudnn, true)},
      {"lh_flash_fwd", light(lh_flash, false)},
      {"lh_flash_fwdbwd", light(lh_flash, true)}};
  {  // the inner SDPA alone on S slots ([B, H, S, D], the gather's layout): the op's floor, so
     // the share outside it is measured, not inferred from stage timings
    const int64_t S = g.S;
    const at::Tensor qs = torch::randn({d.B, d.H, S, d.D}, opts).requires_grad_();
    const at::Tensor ks = torch::randn({d.B, d.H, S, d.D}, opts).requires_grad_();
    const at::Tensor vs = torch::randn({d.B, d.H, S, d.D}, opts).requires_grad_();
    const at::Tensor dos = torch::randn({d.B, d.H, S, d.D}, opts);
    auto inner = [=](bool backward) -> Fn {
      return [=](const InputSet&) {
        if (!backward) {
          torch::NoGradGuard ng;
          stages::sdpa_causal(qs, ks, vs, SdpaBackend::Cudnn);
          return;
        }
        const at::Tensor o = stages::sdpa_causal(qs, ks, vs, SdpaBackend::Cudnn);  // [B, H, S, D]
        torch::autograd::grad({o}, {qs, ks, vs}, {dos});
      };
    };
    cases.push_back({"sdpaS_cudnn_fwd", inner(false)});
    cases.push_back({"sdpaS_cudnn_fwdbwd", inner(true)});
  }
  if (dilated) {  // the dilated scorer next to the norm scorer, both with the cuDNN inner SDPA
    cases.push_back({"lhdil_cudnn_fwd", light(dil_cudnn, false)});
    cases.push_back({"lhdil_cudnn_fwdbwd", light(dil_cudnn, true)});
  }
  std::map<std::string, double> first_ms;
  for (const auto& [name, fn] : cases) {
    first_ms[name] = first_call(fn, sets[0], name.find("fwdbwd") == std::string::npos,
                                &pt.cases[name]);
    std::cout << "  first call " << std::left << std::setw(20) << name << std::right
              << std::setw(10) << std::setprecision(4) << first_ms[name] << " ms, peak "
              << pt.cases[name].peak_gib << " GiB\n" << std::flush;
  }
  {  // the two dense kernels agree (also a second warm-up of the forwards)
    torch::NoGradGuard ng;
    pt.verify.dense = rel_err(dense_attention(sets[0].q, sets[0].k, sets[0].v, SdpaBackend::Cudnn),
                              dense_attention(sets[0].q, sets[0].k, sets[0].v, SdpaBackend::Flash));
    if (pt.verify.dense > 2e-2)
      throw std::runtime_error("dense cuDNN and flash disagree at N = " + std::to_string(N));
  }
  // More input sets, so consecutive calls never find their inputs in L2.
  const double set_bytes = 4.0 * static_cast<double>(sets[0].q.nbytes());
  const double l2 = at::cuda::getCurrentDeviceProperties()->l2CacheSize;
  const int64_t n_sets = std::max<int64_t>(2, static_cast<int64_t>(std::ceil(3 * l2 / set_bytes)));
  while (static_cast<int64_t>(sets.size()) < n_sets) sets.push_back(make_set(d, opts));
  // Lighthouse (cuDNN inner SDPA) alternates with that SDPA alone on S slots.
  const std::map<std::string, std::string> partner{{"lh_cudnn_fwd", "sdpaS_cudnn_fwd"},
                                                   {"lh_cudnn_fwdbwd", "sdpaS_cudnn_fwdbwd"}};
  std::map<std::string, const Fn*> by_name;
  for (const auto& [name, fn] : cases) by_name[name] = &fn;
  auto report = [&](const std::string& name, bool paired) {
    std::cout << "  " << std::left << std::setw(20) << name << std::right << std::setw(12)
              << std::setprecision(5) << pt.cases[name].median_ms << " ms  (median of "
              << pt.cases[name].repeats << (paired ? ", alternating" : "") << ")\n"
              << std::flush;
  };
  for (const auto& [name, fn] : cases) {
    const bool is_partner = std::any_of(partner.begin(), partner.end(),
                                        [&](const auto& kv) { return kv.second == name; });
    if (is_partner) continue;  // timed with its Lighthouse case
    const auto it = partner.find(name);
    std::vector<std::pair<const Fn*, CaseResult*>> timed{{&fn, &pt.cases[name]}};
    if (it != partner.end()) timed.emplace_back(by_name.at(it->second), &pt.cases[it->second]);
    time_cases(timed, sets, first_ms[name], a);
    report(name, timed.size() > 1);
    if (timed.size() > 1) report(it->second, true);
  }
  pt.stages = time_stages(sets, lh_cudnn, g, d, std::max<int64_t>(a.repeats, 3));
  return pt;
}

std::string command_line(const BenchArgs& a) {
  std::ostringstream os;
  os << "lighthouse bench --device cuda --dtype " << a.dtype << " --batch " << a.batch
     << " --heads " << a.heads << " --kv-heads " << (a.kv_heads > 0 ? a.kv_heads : a.heads)
     << " --dim " << a.dim << " --set lighthouse.levels=" << a.lh.levels
     << " --set lighthouse.pool=" << a.lh.pool << " --set lighthouse.tile_topk=" << a.lh.tile_topk
     << " --set lighthouse.selection=" << selection_name(a.lh.selection);
  if (a.lh.scorer == Scorer::Dilated)
    os << " --set lighthouse.scorer=dilated --set lighthouse.dilation=" << a.lh.dilation;
  os << " --seq-lens ";
  for (size_t i = 0; i < a.seq_lens.size(); ++i) os << (i ? "," : "") << a.seq_lens[i];
  os << " --topks ";
  for (size_t i = 0; i < a.topks.size(); ++i) os << (i ? "," : "") << a.topks[i];
  os << " --warmup " << a.warmup << " --repeats " << a.repeats << " --case-budget "
     << a.case_budget_s;
  return os.str();
}

}  // namespace

int run_cuda_bench(const BenchArgs& args, const std::string& command) {
  BenchArgs a = args;
  if (a.seq_lens.empty()) a.seq_lens = {a.n};
  if (a.topks.empty()) a.topks = {a.lh.topk};
  if (a.topks.size() != 1 && a.topks.size() != a.seq_lens.size())
    throw std::invalid_argument("--topks must have one value or one per --seq-lens entry");
  TORCH_CHECK(torch::cuda::is_available(), "bench --device cuda: no CUDA device");
  const auto opts = torch::TensorOptions().dtype(parse_dtype(a.dtype)).device(at::kCUDA);
  torch::manual_seed(a.seed);

  BenchReport rep;
  rep.device = at::cuda::getCurrentDeviceProperties()->name;
  rep.date = today();
  rep.command = command.empty() ? command_line(a) : command;
  rep.args = a;
  rep.copy_gbps = copy_gbps();
  std::cout << "device: " << rep.device << "   device-to-device copy: " << std::setprecision(4)
            << rep.copy_gbps << " GB/s (read + write)\n";
  Progress progress("bench cuda", static_cast<int64_t>(a.seq_lens.size()), "points");
  for (size_t i = 0; i < a.seq_lens.size(); ++i) {
    const int64_t k = a.topks.size() == 1 ? a.topks[0] : a.topks[i];
    progress.clear();  // the point logs its cases on stdout
    rep.points.push_back(run_point(a, a.seq_lens[i], k, opts));
    c10::cuda::CUDACachingAllocator::emptyCache();
    if (!a.json.empty()) write_json(rep, a.json);  // partial results survive a later failure
    progress.update(static_cast<int64_t>(i + 1), "N = " + std::to_string(a.seq_lens[i]));
  }
  print_report(rep);
  if (!a.markdown.empty()) write_markdown(rep, a.markdown);
  bool ok = true;
  for (const auto& p : rep.points) ok = ok && (!p.verified || p.verify.ok);
  return ok ? 0 : 2;
}

}  // namespace lighthouse::cli
