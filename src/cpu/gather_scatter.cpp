// CPU reference for the gather into the sub-sequence (SPEC.md §5), the scatter back as a
// per-position sum (SPEC.md §6) and the backward of both (SPEC.md §7). Every output element
// is one fixed-order sum, so results are deterministic.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "cpu/reference.h"

namespace lighthouse::cpu {

at::Tensor gather(const at::Tensor& x, const at::Tensor& pyramid, const at::Tensor& slots,
                  const Geometry& g) {
  const int64_t B = x.size(0), N = x.size(1), Hx = x.size(2), D = x.size(3);
  const int64_t H = slots.size(1), S = slots.size(2), group = H / Hx;
  at::Tensor out = at::empty({B, H, S, D}, x.options());  // [B, H, S, D]
  const int64_t* sl = slots.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lighthouse_cpu_gather", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* pp = pyramid.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / H, hx = (bh % H) / group;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t e = sl[bh * S + s];
          const scalar_t* src = e < N ? xp + ((b * N + e) * Hx + hx) * D
                                      : pp + ((b * g.P1 + e - N) * Hx + hx) * D;
          scalar_t* dst = op + (bh * S + s) * D;
          for (int64_t d = 0; d < D; ++d) dst[d] = src[d];
        }
      }
    });
  });
  return out;
}

at::Tensor gather_backward(const at::Tensor& grad, const at::Tensor& inverse, int64_t kv_heads,
                           const Geometry& g) {
  const int64_t B = grad.size(0), H = grad.size(1), S = grad.size(2), D = grad.size(3);
  const int64_t N = g.N, group = H / kv_heads;
  at::Tensor dx = at::empty({B, N, kv_heads, D}, grad.options());  // [B, N, Hkv, D]
  const int64_t* inv = inverse.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "lighthouse_cpu_gather_backward", [&] {
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    scalar_t* dp = dx.data_ptr<scalar_t>();
    at::parallel_for(0, B * N, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bt = begin; bt < end; ++bt) {
        const int64_t b = bt / N, t = bt % N;
        for (int64_t hk = 0; hk < kv_heads; ++hk) {
          scalar_t* dst = dp + (bt * kv_heads + hk) * D;
          for (int64_t d = 0; d < D; ++d) dst[d] = 0;
          for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
            for (int64_t l = 0; l < g.L; ++l) {
              const int64_t i = window_entry(g, l, t);  // -1: a tail position above level 0
              if (i < 0) continue;
              const int64_t s = inv[(b * H + h) * g.P + g.level_offset[l] + i];
              if (s < 0) continue;
              const scalar_t share = scalar_t(1) / static_cast<scalar_t>(g.window[l]);
              const scalar_t* src = gp + ((b * H + h) * S + s) * D;
              for (int64_t d = 0; d < D; ++d) dst[d] += src[d] * share;
            }
          }
        }
      }
    });
  });
  return dx;
}

at::Tensor scatter(const at::Tensor& o_tilde, const at::Tensor& inverse, const Geometry& g) {
  const int64_t B = o_tilde.size(0), H = o_tilde.size(1), S = o_tilde.size(2);
  const int64_t D = o_tilde.size(3), N = g.N;
  at::Tensor out = at::empty({B, N, H, D}, o_tilde.options());  // [B, N, H, D]
  const int64_t* inv = inverse.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(o_tilde.scalar_type(), "lighthouse_cpu_scatter", [&] {
    const scalar_t* src = o_tilde.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * N, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bt = begin; bt < end; ++bt) {
        const int64_t b = bt / N, t = bt % N;
        for (int64_t h = 0; h < H; ++h) {
          scalar_t* dst = op + (bt * H + h) * D;
          for (int64_t d = 0; d < D; ++d) dst[d] = 0;
          for (int64_t l = 0; l < g.L; ++l) {
            const int64_t i = scatter_entry(g, l, t);  // entry whose range R holds t
            if (i < 0) continue;
            const int64_t s = inv[(b * H + h) * g.P + g.level_offset[l] + i];
            if (s < 0) continue;
            const scalar_t* row = src + ((b * H + h) * S + s) * D;
            for (int64_t d = 0; d < D; ++d) dst[d] += row[d];
          }
        }
      }
    });
  });
  return out;
}

at::Tensor scatter_backward(const at::Tensor& grad, const at::Tensor& slots, const Geometry& g) {
  const int64_t B = grad.size(0), N = grad.size(1), H = grad.size(2), D = grad.size(3);
  const int64_t S = slots.size(2);
  at::Tensor out = at::empty({B, H, S, D}, grad.options());  // [B, H, S, D]
  const int64_t* sl = slots.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "lighthouse_cpu_scatter_backward", [&] {
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / H, h = bh % H;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t e = sl[bh * S + s];
          const int64_t l = level_of(g, e);
          const Range r = scatter_range(g, l, e - g.level_offset[l]);
          scalar_t* dst = op + (bh * S + s) * D;
          for (int64_t d = 0; d < D; ++d) dst[d] = 0;
          for (int64_t t = r.first; t <= r.last; ++t) {
            const scalar_t* row = gp + ((b * N + t) * H + h) * D;
            for (int64_t d = 0; d < D; ++d) dst[d] += row[d];
          }
        }
      }
    });
  });
  return out;
}

}  // namespace lighthouse::cpu
