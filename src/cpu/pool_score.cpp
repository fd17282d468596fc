// CPU reference for stage 1 (mean pyramid), the norm scorer and the max-pooling of level-0
// scores into coarser levels that every scorer shares.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>

#include "cpu/reference.h"

namespace lighthouse::cpu {

at::Tensor pool(const at::Tensor& x, const Geometry& g) {
  const int64_t B = x.size(0), N = x.size(1), Hx = x.size(2), D = x.size(3);
  at::Tensor pyr = at::empty({B, g.P1, Hx, D}, x.options());  // [B, P1, Hx, D]
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lighthouse_cpu_pool", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* out = pyr.data_ptr<scalar_t>();
    at::parallel_for(0, B * Hx, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / Hx, h = bh % Hx;
        for (int64_t l = 1; l < g.L; ++l) {
          const int64_t w = g.window[l];
          const scalar_t inv = scalar_t(1) / static_cast<scalar_t>(w);
          for (int64_t i = 0; i < g.level_len[l]; ++i) {
            scalar_t* dst = out + ((b * g.P1 + g.level_offset[l] - N + i) * Hx + h) * D;
            for (int64_t d = 0; d < D; ++d) {
              scalar_t acc = 0;  // mean over the window, straight from level 0
              for (int64_t t = i * w; t < (i + 1) * w; ++t) acc += xp[((b * N + t) * Hx + h) * D + d];
              dst[d] = acc * inv;
            }
          }
        }
      }
    });
  });
  return pyr;
}

at::Tensor score(const at::Tensor& x, const Geometry& g) {
  const int64_t B = x.size(0), N = x.size(1), Hx = x.size(2), D = x.size(3);
  at::Tensor sc = at::empty({B, Hx, g.P}, x.options().dtype(at::kFloat));  // [B, Hx, P]
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lighthouse_cpu_score", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    float* out = sc.data_ptr<float>();
    at::parallel_for(0, B * Hx, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / Hx, h = bh % Hx;
        float* s = out + bh * g.P;
        for (int64_t t = 0; t < N; ++t) {
          scalar_t acc = 0;
          const scalar_t* row = xp + ((b * N + t) * Hx + h) * D;
          for (int64_t d = 0; d < D; ++d) acc += row[d] * row[d];
          s[t] = static_cast<float>(std::sqrt(acc));
        }
        max_pool_levels(s, g);
      }
    });
  });
  return sc;
}

void max_pool_levels(float* s, const Geometry& g) {
  for (int64_t l = 1; l < g.L; ++l) {
    const float* prev = s + g.level_offset[l - 1];
    float* cur = s + g.level_offset[l];
    for (int64_t i = 0; i < g.level_len[l]; ++i) {
      float mx = prev[i * g.p];  // max over children == max over the window (NaN wins)
      for (int64_t j = 1; j < g.p; ++j) {
        const float v = prev[i * g.p + j];
        if (std::isnan(v) || v > mx) mx = std::isnan(mx) ? mx : v;
      }
      cur[i] = mx;
    }
  }
}

}  // namespace lighthouse::cpu
