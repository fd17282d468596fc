// CPU reference of the dilated scorer (SPEC.md §4): plain loops, float64-capable. For every
// (batch, query head h, position t) it runs causal softmax attention over the positions
// s <= t with s = t (mod dilation), once with Q_h as queries and K_g as keys (sq) and once
// with the roles swapped (sk), values V_g both times, scale 1 / sqrt(D), and stores the
// output's norm; coarser levels take window maxima (max_pool_levels).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cpu/reference.h"

namespace lighthouse::cpu {
namespace {

// One head's attention norms: rows x_t are the queries, y_s the keys, v_s the values (D
// elements each; rows of x lie sx elements apart, of y sy, of v sv); out[t] = ||Attn(x, y,
// v)_t||_2 inside the strided sub-sequence of t.
template <typename T>
void strided_attention_norms(const T* x, int64_t sx, const T* y, int64_t sy, const T* v,
                             int64_t sv, int64_t N, int64_t D, int64_t dilation, float* out) {
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  std::vector<T> w(N / dilation + 1);  // softmax weights of one query
  std::vector<T> o(D);                 // [D] its output
  for (int64_t t = 0; t < N; ++t) {
    const T* xt = x + t * sx;
    T mx = -std::numeric_limits<T>::infinity();
    int64_t n = 0;
    for (int64_t s = t % dilation; s <= t; s += dilation, ++n) {
      const T* ys = y + s * sy;
      T dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += xt[d] * ys[d];
      w[n] = dot * scale;
      if (std::isnan(w[n]) || w[n] > mx) mx = std::isnan(mx) ? mx : w[n];
    }
    T sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      w[j] = std::exp(w[j] - mx);
      sum += w[j];
    }
    for (int64_t d = 0; d < D; ++d) o[d] = 0;
    int64_t j = 0;
    for (int64_t s = t % dilation; s <= t; s += dilation, ++j) {
      const T* vs = v + s * sv;
      for (int64_t d = 0; d < D; ++d) o[d] += w[j] * vs[d];
    }
    T ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += (o[d] / sum) * (o[d] / sum);
    out[t] = static_cast<float>(std::sqrt(ss));
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> dilated_score(const at::Tensor& q, const at::Tensor& k,
                                                 const at::Tensor& v, int64_t dilation,
                                                 const Geometry& g) {
  const int64_t B = q.size(0), N = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  const int64_t group = H / Hkv;
  auto opts = q.options().dtype(at::kFloat);
  at::Tensor sq = at::empty({B, H, g.P}, opts);  // [B, H, P]
  at::Tensor sk = at::empty({B, H, g.P}, opts);  // [B, H, P]
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "lighthouse_cpu_dilated_score", [&] {
    const scalar_t* qp = q.data_ptr<scalar_t>();
    const scalar_t* kp = k.data_ptr<scalar_t>();
    const scalar_t* vp = v.data_ptr<scalar_t>();
    float* sqp = sq.data_ptr<float>();
    float* skp = sk.data_ptr<float>();
    at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / H, h = bh % H, kv = h / group;
        const scalar_t* qh = qp + (b * N * H + h) * D;     // rows of Q_h, stride H * D
        const scalar_t* kg = kp + (b * N * Hkv + kv) * D;  // rows of K_g, stride Hkv * D
        const scalar_t* vg = vp + (b * N * Hkv + kv) * D;  // rows of V_g, stride Hkv * D
        float* sq_h = sqp + bh * g.P;
        float* sk_h = skp + bh * g.P;
        strided_attention_norms(qh, H * D, kg, Hkv * D, vg, Hkv * D, N, D, dilation, sq_h);
        strided_attention_norms(kg, Hkv * D, qh, H * D, vg, Hkv * D, N, D, dilation, sk_h);
        max_pool_levels(sq_h, g);
        max_pool_levels(sk_h, g);
      }
    });
  });
  return {sq, sk};
}

}  // namespace lighthouse::cpu
