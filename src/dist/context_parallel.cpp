// Context-parallel Lighthouse attention (context_parallel.h). Shapes: B batch, n chunk length,
// H / Hkv heads, D head dim, Sc = S / (2W) slots per chunk, W ranks of the CP group.
#include "dist/context_parallel.h"

#include <limits>
#include <optional>
#include <vector>

#include "dist/cp_layout.h"
#include "dist/ring_attention.h"
#include "lighthouse/stages.h"
#include "lighthouse/subsequence.h"

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

// The causal rule's halo (SPEC.md §10): for each of this rank's chunks, the scores of the
// previous chunk's last entry at every level >= 1. Head chunk r receives rank r-1's head chunk's,
// tail chunk 2W-1-r rank r+1's tail chunk's; rank W-1's tail chunk W takes its own head chunk's
// and chunk 0 gets -inf (no previous window: cs_l(0) = s_0(0)). The transfers are posted at
// construction and waited by prev(), so the caller computes in between.
class Halo {
 public:
  // last [2B, X, L-1]: this rank's chunks' last scores, head chunk first.
  Halo(Group& g, const at::Tensor& last) : g_(g), last_(last.contiguous()) {
    const int W = g.size(), r = g.rank();
    const int64_t B = last_.size(0) / 2;
    recv_head_ = at::empty_like(last_.narrow(0, 0, B));  // [B, X, L-1]
    recv_tail_ = at::empty_like(recv_head_);
    if (W == 1) return;
    head_ = g.send_recv(last_.narrow(0, 0, B), (r + 1) % W, recv_head_, (r - 1 + W) % W, kTag,
                        "context-parallel selection halo (head chunks)");
    tail_ = g.send_recv(last_.narrow(0, B, B), (r - 1 + W) % W, recv_tail_, (r + 1) % W,
                        kTag + 1, "context-parallel selection halo (tail chunks)");
  }

  // [2B, X, L-1]: the previous chunk's last scores for this rank's head and tail chunk.
  at::Tensor prev() {
    head_.wait();
    tail_.wait();
    const int W = g_.size(), r = g_.rank();
    const int64_t B = last_.size(0) / 2;
    const at::Tensor head =
        r == 0 ? at::full_like(recv_head_, -std::numeric_limits<float>::infinity()) : recv_head_;
    const at::Tensor tail = r == W - 1 ? last_.narrow(0, 0, B) : recv_tail_;
    return at::cat({head, tail}, 0);
  }

 private:
  static constexpr int kTag = 1 << 20;  // apart from the ring's tags (2 step, 2 step + 1)
  Group& g_;
  at::Tensor last_, recv_head_, recv_tail_;
  Pending head_, tail_;
};

// The score of the last entry of every level >= 1: s [2B, X, P] -> [2B, X, L-1].
at::Tensor last_scores(const at::Tensor& s, const Geometry& lg) {
  std::vector<int64_t> idx;
  for (int64_t l = 1; l < lg.L; ++l) idx.push_back(lg.level_offset[l] + lg.level_len[l] - 1);
  return s.index_select(2, torch::tensor(idx, s.options().dtype(at::kLong)));
}

}  // namespace

std::string check_context_parallel(const Config& cfg, int64_t N, int W) {
  if (W < 1) return "dist.cp: the context-parallel degree must be >= 1, got " + std::to_string(W);
  if (cfg.scorer != Scorer::Norm)
    return "scorer: context parallel needs the norm scorer (the \"" + scorer_name(cfg.scorer) +
           "\" scorer attends across chunk boundaries), got \"" + scorer_name(cfg.scorer) + "\"";
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
  const int64_t L = ccfg.levels, p = ccfg.pool;
  const at::Tensor qs = stack_chunks(q), ks = stack_chunks(k), vs = stack_chunks(v);  // [2B, n, .]
  // Scores, the causal rule's halo posted, the pyramids while it travels, then the selection
  // (SPEC.md §10).
  at::Tensor sq, sk;  // [2B, H, P], [2B, Hkv, P]
  std::optional<Halo> halo;
  {
    torch::NoGradGuard no_grad;
    sq = std::get<1>(stages::pool_score(qs, L, p, false, true));
    sk = std::get<1>(stages::pool_score(ks, L, p, false, true));
    if (ccfg.selection == Selection::Causal) {
      const Geometry lg = level_geometry(L, p, n);
      halo.emplace(g, at::cat({last_scores(sq, lg), last_scores(sk, lg)}, 1));  // [2B, H+Hkv, L-1]
    }
  }
  auto [pyr_q, pyr_k, pyr_v, no_sq, no_sk] = stages::pool_score_qkv(qs, ks, vs, L, p, false);
  Plan plan;
  {
    torch::NoGradGuard no_grad;
    at::Tensor prev_sq, prev_sk;  // [2B, H, L-1], [2B, Hkv, L-1] (causal only)
    if (halo) {
      const at::Tensor prev = halo->prev();  // [2B, H+Hkv, L-1]
      prev_sq = prev.narrow(1, 0, H);
      prev_sk = prev.narrow(1, H, sk.size(1));
    }
    auto [slots, inverse] = stages::select(sq, sk, ccfg, prev_sq, prev_sk);
    plan = {slots, inverse};  // [2B, H, Sc], [2B, H, P]
  }
  if (plans) *plans = plan;
  auto [qt, kt, vt] = stages::gather_qkv(qs, ks, vs, pyr_q, pyr_k, pyr_v, plan.slots,
                                         plan.inverse, L, p);  // [2B, H, Sc, D] each
  const at::Tensor ot = sequence_to_chunks(ring_attention(
      g, chunks_to_sequence(qt), chunks_to_sequence(kt),
      chunks_to_sequence(vt)));                   // [2B, H, Sc, D]
  at::Tensor o = unstack_chunks(scatter_with_halo(g, ot, plan, ccfg));  // [B, 2n, H, D]
  if (fan_in) {
    torch::NoGradGuard no_grad;
    const at::Tensor ones = at::ones({2 * B, H, ot.size(2), 1}, ot.options());  // [2B, H, Sc, 1]
    *fan_in = unstack_chunks(scatter_with_halo(g, ones, plan, ccfg)).squeeze(-1);  // [B, 2n, H]
  }
  return o;
}

}  // namespace lighthouse::dist
