// Context-parallel Lighthouse attention (context_parallel.h). Shapes: B batch, n chunk length,
// H / Hkv heads, D head dim, Sc = S / (2W) slots per chunk, W ranks of the CP group.
#include "dist/context_parallel.h"

#include <vector>

#include "dist/cp_layout.h"
#include "dist/ring_attention.h"

namespace lighthouse::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Every chunk's x [2B, ...] (this rank's two chunks, head chunk first) gathered to
// [2W, B, ...] in chunk order on every rank. The backward sums the ranks' gradients.
class AllGatherChunksFn : public torch::autograd::Function<AllGatherChunksFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    Group& g = *reinterpret_cast<Group*>(group);
    const int W = g.size(), r = g.rank();
    const int64_t B = x.size(0) / 2;
    std::vector<int64_t> shape = {2 * W, B};
    for (int64_t d = 1; d < x.dim(); ++d) shape.push_back(x.size(d));
    at::Tensor all = at::zeros(shape, x.options());  // [2W, B, ...]
    all[cp_chunk(r, W, 0)].copy_(x.narrow(0, 0, B));
    all[cp_chunk(r, W, 1)].copy_(x.narrow(0, B, B));
    std::vector<at::Tensor> one = {all};
    g.all_reduce_sum(one, "context-parallel boundary all-gather");
    return all;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Group& g = *reinterpret_cast<Group*>(ctx->saved_data["group"].toInt());
    const int W = g.size(), r = g.rank();
    std::vector<at::Tensor> one = {grads[0].contiguous().clone()};  // [2W, B, ...]
    g.all_reduce_sum(one, "context-parallel boundary all-gather backward");
    return {at::cat({one[0][cp_chunk(r, W, 0)], one[0][cp_chunk(r, W, 1)]}), at::Tensor()};
  }
};

// [2B, H, Sc, D] (chunks on the batch) <-> [B, H, 2 Sc, D] (chunks along the sequence).
at::Tensor chunks_to_sequence(const at::Tensor& x) {
  const int64_t B = x.size(0) / 2, H = x.size(1), S = x.size(2), D = x.size(3);
  return x.view({2, B, H, S, D}).permute({1, 2, 0, 3, 4}).reshape({B, H, 2 * S, D});
}
at::Tensor sequence_to_chunks(const at::Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), S = x.size(2) / 2, D = x.size(3);
  return x.view({B, H, 2, S, D}).permute({2, 0, 1, 3, 4}).reshape({2 * B, H, S, D});
}

// [B, 2n, ...] -> [2B, n, ...] and back.
at::Tensor stack_chunks(const at::Tensor& x) {
  const int64_t n = x.size(1) / 2;
  return at::cat({x.narrow(1, 0, n), x.narrow(1, n, n)}, 0);
}
at::Tensor unstack_chunks(const at::Tensor& x) {
  const int64_t B = x.size(0) / 2;
  return at::cat({x.narrow(0, 0, B), x.narrow(0, B, B)}, 1);
}

// The chunks' sub-sequence outputs ot [2B, H, Sc, E] scattered back to [2B, n, H, E]
// (SPEC.md §6), with the last entry of every level >= 1, which also stands for the first
// p^l - 1 positions of the next chunk, passed on to that chunk (an all-gather over g).
at::Tensor scatter_with_halo(Group& g, const at::Tensor& ot, const Plan& plan, const Config& cfg) {
  const int W = g.size(), r = g.rank();
  const int64_t B = ot.size(0) / 2, H = ot.size(1), E = ot.size(3), L = cfg.levels;
  at::Tensor o = lighthouse::scatter(ot, plan, cfg);  // [2B, n, H, E]
  const int64_t n = o.size(1);
  const Geometry lg = level_geometry(L, cfg.pool, n);
  std::vector<at::Tensor> last;  // [2B, H, E] per level >= 1
  for (int64_t l = 1; l < L; ++l) {
    const at::Tensor slot = plan.inverse.select(2, lg.level_offset[l] + lg.level_len[l] - 1);
    const at::Tensor idx = slot.clamp_min(0).view({2 * B, H, 1, 1}).expand({2 * B, H, 1, E});
    const at::Tensor emitted = (slot >= 0).unsqueeze(-1).to(ot.scalar_type());  // [2B, H, 1]
    last.push_back(ot.gather(2, idx).squeeze(2) * emitted);
  }
  const at::Tensor halo = at::stack(last, 2);  // [2B, H, L-1, E]
  const at::Tensor all = AllGatherChunksFn::apply(halo, reinterpret_cast<int64_t>(&g));
  std::vector<at::Tensor> prev;  // [B, H, L-1, E] per half: the previous chunk's halo
  for (int half = 0; half < 2; ++half) {
    const int64_t c = cp_chunk(r, W, half);
    prev.push_back(c > 0 ? all[c - 1] : at::zeros_like(all[0]));
  }
  const at::Tensor into = at::cat(prev, 0);  // [2B, H, L-1, E]
  const int64_t w = lg.window[L - 1] - 1;    // positions a halo reaches into a chunk
  at::Tensor reach = at::zeros({w, L - 1}, o.options());  // [w, L-1]: level l reaches p^l - 1
  for (int64_t l = 1; l < L; ++l)
    reach.narrow(1, l - 1, 1).narrow(0, 0, lg.window[l] - 1).fill_(1);
  const at::Tensor add = at::einsum("jl,bhle->bjhe", {reach, into});  // [2B, w, H, E]
  return at::cat({o.narrow(1, 0, w) + add, o.narrow(1, w, n - w)}, 1);  // [2B, n, H, E]
}

}  // namespace

std::string check_context_parallel(const Config& cfg, int64_t N, int W) {
  if (W < 1) return "dist.cp: the context-parallel degree must be >= 1, got " + std::to_string(W);
  if (cfg.scorer != Scorer::Norm)
    return "scorer: context parallel needs the norm scorer (the \"" + scorer_name(cfg.scorer) +
           "\" scorer attends across chunk boundaries), got \"" + scorer_name(cfg.scorer) + "\"";
  if (cfg.selection != Selection::Stratified)
    return "selection: context parallel needs the stratified selection (the \"" +
           selection_name(cfg.selection) +
           "\" rule reads the previous tile's scores at a tile start), got \"" +
           selection_name(cfg.selection) + "\"";
  if (cfg.tile_topk <= 0 || cfg.topk % cfg.tile_topk != 0 ||
      (cfg.topk / cfg.tile_topk) % (2 * W) != 0)
    return "topk: context parallel over " + std::to_string(W) +
           " ranks cuts the topk / tile_topk tiles into " + std::to_string(2 * W) +
           " chunks on tile boundaries, so topk / tile_topk must be a multiple of " +
           std::to_string(2 * W) + ", got topk = " + std::to_string(cfg.topk) +
           ", tile_topk = " + std::to_string(cfg.tile_topk);
  Geometry g;
  std::string error;
  if (!make_geometry(cfg, N, &g, &error)) return error;
  // Chunks are cut on tile boundaries: every tile whole and equal, no level-0 tail (SPEC.md
  // §2's last shorter tile and tail are single-device only).
  if (g.tail != 0 || g.tiles != g.T || g.C_last != g.C)
    return "N: context parallel needs whole, equal tiles: N = " + std::to_string(N) +
           " must be a multiple of pool^(levels-1) x topk / tile_topk = " +
           std::to_string(g.window[g.c] * g.T);
  return "";
}

Config chunk_config(const Config& cfg, int W) {
  Config c = cfg;
  c.topk = cfg.topk / (2 * W);
  return c;
}

at::Tensor global_slots(const at::Tensor& slots, int64_t chunk, int64_t n, int W,
                        const Config& cfg) {
  const Geometry local = level_geometry(cfg.levels, cfg.pool, n);
  const Geometry global = level_geometry(cfg.levels, cfg.pool, 2 * W * n);
  at::Tensor out = at::full_like(slots, -1);  // [B, H, Sc]
  for (int64_t l = 0; l < cfg.levels; ++l) {
    const int64_t lo = local.level_offset[l], hi = local.level_offset[l + 1];
    const at::Tensor in_level = (slots >= lo) & (slots < hi);
    const int64_t shift = global.level_offset[l] - lo + chunk * local.level_len[l];
    out = at::where(in_level, slots + shift, out);
  }
  return out;
}

at::Tensor cp_attention(Group& g, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const Config& cfg, Plan* plans, at::Tensor* fan_in) {
  const int W = g.size();
  TORCH_CHECK_VALUE(q.dim() == 4 && q.size(1) % 2 == 0,
                    "cp_attention: q must be [B, 2n, H, D] (this rank's two chunks), got ",
                    q.sizes());
  const int64_t n = q.size(1) / 2, B = q.size(0), H = q.size(2);
  const std::string error = check_context_parallel(cfg, 2 * W * n, W);
  TORCH_CHECK_VALUE(error.empty(), "cp_attention: ", error);
  const Config ccfg = chunk_config(cfg, W);
  const at::Tensor qs = stack_chunks(q), ks = stack_chunks(k), vs = stack_chunks(v);  // [2B, n, .]
  Plan plan;
  {
    torch::NoGradGuard no_grad;
    plan = lighthouse::plan(qs, ks, ccfg);  // [2B, H, Sc], [2B, H, P]
  }
  if (plans) *plans = plan;
  const SubSequence sub = lighthouse::gather(qs, ks, vs, plan, ccfg, false);  // [2B, H, Sc, D] each
  const at::Tensor ot = sequence_to_chunks(ring_attention(
      g, chunks_to_sequence(sub.q), chunks_to_sequence(sub.k),
      chunks_to_sequence(sub.v)));                // [2B, H, Sc, D]
  at::Tensor o = unstack_chunks(scatter_with_halo(g, ot, plan, ccfg));  // [B, 2n, H, D]
  if (fan_in) {
    torch::NoGradGuard no_grad;
    const at::Tensor ones = at::ones({2 * B, H, ot.size(2), 1}, ot.options());  // [2B, H, Sc, 1]
    *fan_in = unstack_chunks(scatter_with_halo(g, ones, plan, ccfg)).squeeze(-1);  // [B, 2n, H]
  }
  return o;
}

}  // namespace lighthouse::dist
