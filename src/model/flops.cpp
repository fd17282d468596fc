#include "model/flops.h"

#include <stdexcept>
#include <string>

#include "lighthouse/config.h"

namespace lighthouse::model {

double causal_attention_fwd_flops(int64_t n, int64_t heads, int64_t d) {
  const double pairs = static_cast<double>(n) * static_cast<double>(n + 1) / 2.0;
  return 4.0 * pairs * static_cast<double>(d) * static_cast<double>(heads);  // Q.K and P.V
}

StepFlops step_flops(const ModelConfig& cfg, int64_t n, AttentionMode mode) {
  const double N = static_cast<double>(n), d = static_cast<double>(cfg.d_model);
  const double q = static_cast<double>(cfg.n_heads * cfg.head_dim);
  const double kv = static_cast<double>(cfg.n_kv_heads * cfg.head_dim);
  const double f = static_cast<double>(cfg.ffn_hidden);
  const double per_layer = 2.0 * N * d * (q + 2 * kv) + 2.0 * N * q * d + 3 * 2.0 * N * d * f;
  StepFlops out;
  out.gemm = 3.0 * (static_cast<double>(cfg.n_layers) * per_layer +
                    2.0 * N * d * static_cast<double>(cfg.vocab));

  int64_t lighthouse_layers = 0;
  if (mode == AttentionMode::Lighthouse)
    lighthouse_layers = cfg.n_layers - static_cast<int64_t>(resolved_dense_layers(cfg).size());
  const int64_t dense_layers = cfg.n_layers - lighthouse_layers;
  const double dense_fwd = causal_attention_fwd_flops(n, cfg.n_heads, cfg.head_dim);
  out.attention = 3.5 * static_cast<double>(dense_layers) * dense_fwd;
  if (lighthouse_layers > 0) {
    Geometry g;
    std::string err;
    if (!make_geometry(cfg.lighthouse, n, &g, &err)) throw std::invalid_argument(err);
    out.attention += 3.5 * static_cast<double>(lighthouse_layers) *
                     causal_attention_fwd_flops(g.S, cfg.n_heads, cfg.head_dim);
    if (cfg.lighthouse.scorer == Scorer::Dilated) {
      // delta strided sub-sequences of ~n / delta positions, Q.K and the swapped K.Q.
      const int64_t delta = cfg.lighthouse.dilation, sub = (n + delta - 1) / delta;
      out.scorer = static_cast<double>(lighthouse_layers) * 2.0 * static_cast<double>(delta) *
                   causal_attention_fwd_flops(sub, cfg.n_heads, cfg.head_dim);
    }
  }
  return out;
}

}  // namespace lighthouse::model
