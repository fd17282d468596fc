// Ring attention (ring_attention.h). Per ring step, rank r holds the K/V of source rank
// s = (r - step) mod W, i.e. chunks s and 2W-1-s; its queries are chunks r and 2W-1-r:
//   step 0 (s = r): head x head causal, tail x head full, tail x tail causal
//   s < r:          both query chunks x source head chunk, full (the source tail is later)
//   s > r:          query tail chunk x both source chunks, full (the query head is earlier)
// so every step costs about two n x n blocks on every rank (causal load balancing).
#include "dist/ring_attention.h"

#include <array>
#include <cmath>
#include <tuple>
#include <vector>

namespace lighthouse::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Block {
  int64_t q0, qn;  // query rows
  int64_t k0, kn;  // key rows of the K/V block held this step
  bool causal;     // the diagonal block of one chunk
};

std::vector<Block> blocks_of_step(int step, int rank, int W, int64_t n) {
  const int s = ((rank - step) % W + W) % W;
  if (s == rank) return {{0, n, 0, n, true}, {n, n, 0, n, false}, {n, n, n, n, true}};
  if (s < rank) return {{0, 2 * n, 0, n, false}};
  return {{n, n, 0, 2 * n, false}};
}

at::ScalarType acc_type(const at::Tensor& q) {
  return q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// The CUDA memory-efficient kernel's LSE rows are padded to a multiple of 32.
int64_t padded_rows(int64_t rows) { return (rows + 31) / 32 * 32; }

// Stock SDPA on one block: o [B, H, Sq, D] (q's dtype), lse [B, H, Sq] (accumulation dtype).
std::tuple<at::Tensor, at::Tensor> block_forward(const at::Tensor& q, const at::Tensor& k,
                                                 const at::Tensor& v, bool causal) {
  if (q.is_cuda()) {
    auto [o, lse, seed, offset] =
        at::_scaled_dot_product_efficient_attention(q, k, v, std::nullopt, true, 0.0, causal);
    return {o, lse.narrow(2, 0, q.size(2))};
  }
  auto [o, lse] = at::_scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal);
  return {o, lse};
}

// The block's gradients given the merged output `o` and LSE `lse` of its query rows (so the
// softmax it recomputes is the one over the whole sequence): dq, dk, dv.
std::tuple<at::Tensor, at::Tensor, at::Tensor> block_backward(
    const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& o, const at::Tensor& lse, bool causal) {
  if (q.is_cuda()) {
    const int64_t rows = q.size(2);
    at::Tensor lse_pad = at::zeros({lse.size(0), lse.size(1), padded_rows(rows)},
                                   lse.options().dtype(at::kFloat));  // [B, H, rows32]
    lse_pad.narrow(2, 0, rows).copy_(lse);
    const auto cpu_long = torch::TensorOptions().dtype(at::kLong);
    auto [dq, dk, dv, db] = at::_scaled_dot_product_efficient_attention_backward(
        dout.contiguous(), q.contiguous(), k.contiguous(), v.contiguous(), at::Tensor(),
        o.contiguous(), lse_pad, at::zeros({}, cpu_long),
        at::zeros({}, cpu_long), 0.0, {true, true, true, false}, causal);
    return {dq, dk, dv};
  }
  return at::_scaled_dot_product_flash_attention_for_cpu_backward(
      dout.contiguous(), q.contiguous(), k.contiguous(), v.contiguous(), o.contiguous(),
      lse.contiguous(), 0.0, causal);
}

// Folds one block's (o, lse) into the running (o_acc, lse_acc) of its rows, in place.
void merge(at::Tensor o_acc, at::Tensor lse_acc, const at::Tensor& o, const at::Tensor& lse) {
  const at::Tensor l = lse.to(lse_acc.scalar_type());  // [B, H, rows]
  const at::Tensor m = at::logaddexp(lse_acc, l);       // [B, H, rows]
  o_acc.mul_(at::exp(lse_acc - m).unsqueeze(-1));
  o_acc.add_(o.to(o_acc.scalar_type()) * at::exp(l - m).unsqueeze(-1));
  lse_acc.copy_(m);
}

Group& group_of(AutogradContext* ctx) {
  // The group outlives the step (the trainer's session or the caller owns it).
  return *reinterpret_cast<Group*>(ctx->saved_data["group"].toInt());
}

class RingAttentionFn : public torch::autograd::Function<RingAttentionFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, int64_t group) {
    ctx->saved_data["group"] = group;
    Group& g = group_of(ctx);
    const int W = g.size(), r = g.rank();
    const int64_t n = q.size(2) / 2;
    at::Tensor kv = at::stack({k, v}).contiguous();  // [2, B, H, 2n, D]
    at::Tensor o_acc = at::zeros(q.sizes(), q.options().dtype(acc_type(q)));  // [B, H, 2n, D]
    at::Tensor lse_acc = at::full({q.size(0), q.size(1), 2 * n}, -INFINITY,
                                  q.options().dtype(acc_type(q)));  // [B, H, 2n]
    for (int step = 0; step < W; ++step) {
      at::Tensor next;  // [2, B, H, 2n, D]: the next source's K/V, in flight while we compute
      Pending flight;
      if (step + 1 < W) {
        next = at::empty_like(kv);
        flight = g.send_recv(kv, (r + 1) % W, next, (r - 1 + W) % W, 2 * step,
                             "ring attention K/V transfer");
      }
      for (const Block& b : blocks_of_step(step, r, W, n)) {
        auto [o, lse] = block_forward(q.narrow(2, b.q0, b.qn), kv[0].narrow(2, b.k0, b.kn),
                                      kv[1].narrow(2, b.k0, b.kn), b.causal);
        merge(o_acc.narrow(2, b.q0, b.qn), lse_acc.narrow(2, b.q0, b.qn), o, lse);
      }
      if (step + 1 < W) {
        flight.wait();
        kv = next;
      }
    }
    at::Tensor out = o_acc.to(q.scalar_type());  // [B, H, 2n, D]
    ctx->save_for_backward({q, k, v, out, lse_acc});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Group& g = group_of(ctx);
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3],
                     &lse = saved[4];
    const at::Tensor dout = grads[0].contiguous();  // [B, H, 2n, D]
    const int W = g.size(), r = g.rank();
    const int64_t n = q.size(2) / 2;
    const auto acc = q.options().dtype(acc_type(q));
    at::Tensor dq = at::zeros(q.sizes(), acc);  // [B, H, 2n, D]
    at::Tensor kv = at::stack({k, v}).contiguous();  // [2, B, H, 2n, D]
    at::Tensor dkv, dkv_next;                        // [2, B, H, 2n, D]: K/V gradients of a source
    Pending kv_flight, dkv_flight;
    for (int step = 0; step < W; ++step) {
      at::Tensor next;
      if (step + 1 < W) {
        next = at::empty_like(kv);
        kv_flight = g.send_recv(kv, (r + 1) % W, next, (r - 1 + W) % W, 2 * step,
                                "ring attention backward K/V transfer");
      }
      at::Tensor mine = at::zeros(kv.sizes(), acc);  // this rank's part of the source's grads
      for (const Block& b : blocks_of_step(step, r, W, n)) {
        auto [bq, bk, bv] =
            block_backward(dout.narrow(2, b.q0, b.qn), q.narrow(2, b.q0, b.qn),
                           kv[0].narrow(2, b.k0, b.kn), kv[1].narrow(2, b.k0, b.kn),
                           out.narrow(2, b.q0, b.qn), lse.narrow(2, b.q0, b.qn), b.causal);
        dq.narrow(2, b.q0, b.qn).add_(bq);
        mine[0].narrow(2, b.k0, b.kn).add_(bk);
        mine[1].narrow(2, b.k0, b.kn).add_(bv);
      }
      if (step > 0) {  // the source's gradients so far arrive from rank r-1
        dkv_flight.wait();
        mine.add_(dkv_next);
      }
      dkv = mine;
      if (W == 1) {  // no ring: the one source is this rank
        dkv_next = dkv;
        continue;
      }
      dkv_next = at::empty_like(dkv);
      dkv_flight = g.send_recv(dkv, (r + 1) % W, dkv_next, (r - 1 + W) % W, 2 * step + 1,
                               "ring attention backward dK/dV transfer");
      if (step + 1 < W) {
        kv_flight.wait();
        kv = next;
      }
    }
    dkv_flight.wait();  // after W hops this rank holds its own K/V's gradients
    return {dq.to(q.scalar_type()), dkv_next[0].to(k.scalar_type()),
            dkv_next[1].to(v.scalar_type()), at::Tensor()};
  }
};

}  // namespace

at::Tensor ring_attention(Group& g, const at::Tensor& q, const at::Tensor& k,
                          const at::Tensor& v) {
  TORCH_CHECK_VALUE(q.dim() == 4, "ring_attention: q must be [B, H, 2n, D], got ", q.sizes());
  TORCH_CHECK_VALUE(k.sizes() == q.sizes() && v.sizes() == q.sizes(),
                    "ring_attention: k and v must have q's shape ", q.sizes(), ", got ",
                    k.sizes(), " and ", v.sizes());
  TORCH_CHECK_VALUE(q.size(2) % 2 == 0 && q.size(2) > 0,
                    "ring_attention: the local sequence (dim 2 of q) must be two equal chunks, "
                    "got length ",
                    q.size(2));
  return RingAttentionFn::apply(q.contiguous(), k.contiguous(), v.contiguous(),
                               reinterpret_cast<int64_t>(&g));
}

at::Tensor ring_dense_attention(Group& g, const at::Tensor& q, const at::Tensor& k,
                                const at::Tensor& v) {
  TORCH_CHECK_VALUE(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.sizes() == v.sizes() &&
                        q.size(2) % k.size(2) == 0,
                    "ring_dense_attention: q must be [B, 2n, H, D] and k, v [B, 2n, Hkv, D] "
                    "with H % Hkv == 0, got ",
                    q.sizes(), ", ", k.sizes(), ", ", v.sizes());
  const int64_t group = q.size(2) / k.size(2);
  const at::Tensor kh = k.transpose(1, 2).repeat_interleave(group, 1);  // [B, H, 2n, D]
  const at::Tensor vh = v.transpose(1, 2).repeat_interleave(group, 1);  // [B, H, 2n, D]
  const at::Tensor o = ring_attention(g, q.transpose(1, 2), kh, vh);   // [B, H, 2n, D]
  return o.transpose(1, 2).contiguous();                                // [B, 2n, H, D]
}

}  // namespace lighthouse::dist
