// The naive oracle (see oracle.h). Deliberately shares no code with src/cpu or src/core.
#include "support/oracle.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <tuple>

namespace lighthouse::oracle {

Levels::Levels(int64_t n, int64_t levels, int64_t pool) : N(n), L(levels), p(pool) {
  off.assign(L + 1, 0);
  w.assign(L, 1);
  for (int64_t l = 1; l < L; ++l) w[l] = w[l - 1] * p;
  Nf = N - N % w[L - 1];
  for (int64_t l = 0; l < L; ++l) off[l + 1] = off[l] + len(l);
}

int64_t Levels::level(int64_t e) const {
  for (int64_t l = 0; l < L; ++l)
    if (e >= off[l] && e < off[l + 1]) return l;
  throw std::out_of_range("pyramid index " + std::to_string(e) + " out of range");
}

double key(int64_t l, int64_t i, int64_t p, bool selected) {
  const double w = std::pow(static_cast<double>(p), static_cast<double>(l));
  if (l == 0 || !selected) return static_cast<double>(i) * w;
  return static_cast<double>(i + 1) * w - std::pow(2.0, -static_cast<double>(l));
}

at::Tensor scores(const at::Tensor& x, int64_t L, int64_t p) {
  const at::Tensor xc =
      x.scalar_type() == at::kDouble ? x.contiguous() : x.to(at::kFloat).contiguous();
  const int64_t B = x.size(0), N = x.size(1), Hx = x.size(2), D = x.size(3);
  const Levels lv(N, L, p);
  at::Tensor out = at::empty({B, Hx, lv.P()}, at::kFloat);  // [B, Hx, P]
  auto level0 = [&](auto zero) {
    using T = decltype(zero);
    const T* xp = xc.data_ptr<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hx; ++h)
        for (int64_t t = 0; t < N; ++t) {
          T acc = 0;
          for (int64_t d = 0; d < D; ++d) {
            const T val = xp[((b * N + t) * Hx + h) * D + d];
            acc += val * val;
          }
          out[b][h][t] = static_cast<float>(std::sqrt(acc));
        }
  };
  if (xc.scalar_type() == at::kDouble)
    level0(0.0);
  else
    level0(0.0f);
  float* sp = out.data_ptr<float>();
  for (int64_t bh = 0; bh < B * Hx; ++bh) {
    float* s = sp + bh * lv.P();
    for (int64_t l = 1; l < L; ++l)
      for (int64_t i = 0; i < lv.len(l); ++i) {  // windows inside the prefix Nf
        bool nan = false;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t t = i * lv.w[l]; t < (i + 1) * lv.w[l]; ++t) {
          if (std::isnan(s[t]))
            nan = true;
          else
            mx = std::max(mx, s[t]);
        }
        s[lv.off[l] + i] = nan ? std::numeric_limits<float>::quiet_NaN() : mx;
      }
  }
  return out;
}

namespace {

// Selection order as a lexicographic key: NaN first, then larger score, then smaller index.
std::tuple<int, float, int64_t> rank(float s, int64_t i) {
  return std::isnan(s) ? std::make_tuple(0, 0.0f, i) : std::make_tuple(1, -s, i);
}

// cand fully sorted into selection order by the level-local scores s.
std::vector<int64_t> by_score(std::vector<int64_t> cand, const float* s) {
  std::sort(cand.begin(), cand.end(),
            [&](int64_t a, int64_t b) { return rank(s[a], a) < rank(s[b], b); });
  return cand;
}

struct Emitted {
  double key;
  int64_t index;  // pyramid index off(l) + i
};

// SPEC.md §12 causal score of entry (l, i): the max of the level-0 scores over base positions
// [i p^l - p^l, i p^l] (clipped at 0), NaN if any of them is NaN.
float causal_score(const float* s, const Levels& lv, int64_t l, int64_t i) {
  const int64_t a = i * lv.w[l];
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t t = std::max<int64_t>(0, a - lv.w[l]); t <= a; ++t) {
    if (std::isnan(s[t])) return std::numeric_limits<float>::quiet_NaN();
    mx = std::max(mx, s[t]);
  }
  return mx;
}

// SPEC.md §12 online budgeted rule over one level's candidates (ascending): the taken ones
// (budget min(m, n), SPEC.md §4).
std::set<int64_t> causal_take(const std::vector<int64_t>& cand, const float* sq, const float* sk,
                              const Levels& lv, int64_t l, int64_t m_tile) {
  const int64_t n = static_cast<int64_t>(cand.size()), h = m_tile / 2;
  const int64_t m = std::min(m_tile, n);
  std::vector<double> seen_q, seen_k;  // causal scores of the candidates before r
  int64_t tq = 0, tk = 0;
  std::set<int64_t> taken;
  auto beats = [](float s, const std::vector<double>& seen) {
    double sum = 0.0;
    for (double x : seen) sum += x;
    return std::isnan(s) || static_cast<double>(s) * static_cast<double>(seen.size()) > sum;
  };
  for (int64_t r = 0; r < n; ++r) {
    const float a = causal_score(sq, lv, l, cand[r]), b = causal_score(sk, lv, l, cand[r]);
    const int64_t budget_left = m - static_cast<int64_t>(taken.size());
    if (budget_left == n - r) {
      taken.insert(cand[r]);
    } else if (tq < h && tq * n < h * (r + 1) && beats(a, seen_q)) {
      taken.insert(cand[r]);
      ++tq;
    } else if (tk < h && tk * n < h * (r + 1) && beats(b, seen_k)) {
      taken.insert(cand[r]);
      ++tk;
    }
    seen_q.push_back(a);
    seen_k.push_back(b);
  }
  if (static_cast<int64_t>(taken.size()) != m)
    throw std::logic_error("oracle: the causal rule took a different number than min(m, n)");
  return taken;
}

// Every entry one (batch, query head) emits, over all tiles, in no particular order.
std::vector<Emitted> emit_head(const float* sq, const float* sk, const Levels& lv, int64_t k,
                               int64_t m, bool causal) {
  // Tiles of C = ceil(Nc / T) coarsest entries, the last one shorter (SPEC.md §4).
  const int64_t c = lv.L - 1, T = k / m, Nc = lv.len(c), C = (Nc + T - 1) / T;
  std::vector<Emitted> out;
  for (int64_t first = 0; first < Nc; first += C) {
    std::vector<int64_t> cand;
    for (int64_t i = first; i < std::min(first + C, Nc); ++i) cand.push_back(i);
    for (int64_t l = c; l >= 1; --l) {
      std::set<int64_t> sel;
      if (static_cast<int64_t>(cand.size()) <= m) {
        sel.insert(cand.begin(), cand.end());  // a short tile: everything is refined
      } else if (causal) {
        sel = causal_take(cand, sq, sk, lv, l, m);
      } else {
        const std::vector<int64_t> order_q = by_score(cand, sq + lv.off[l]);
        sel.insert(order_q.begin(), order_q.begin() + m / 2);  // Aq
        const std::vector<int64_t> order_k =
            by_score(std::vector<int64_t>(order_q.begin() + m / 2, order_q.end()), sk + lv.off[l]);
        sel.insert(order_k.begin(), order_k.begin() + m / 2);  // Ak
      }
      for (int64_t i : cand) out.push_back({key(l, i, lv.p, sel.count(i) > 0), lv.off[l] + i});
      cand.clear();
      for (int64_t i : sel)
        for (int64_t ch = 0; ch < lv.p; ++ch) cand.push_back(i * lv.p + ch);
    }
    for (int64_t i : cand) out.push_back({key(0, i, lv.p, false), i});
  }
  for (int64_t t = lv.Nf; t < lv.N; ++t) out.push_back({key(0, t, lv.p, false), t});  // tail
  return out;
}

}  // namespace

Selection select(const at::Tensor& sq, const at::Tensor& sk, int64_t L, int64_t p, int64_t k,
                 int64_t m, bool causal) {
  const int64_t B = sq.size(0), H = sq.size(1), Hkv = sk.size(1), P = sq.size(2);
  // The N whose pyramid has P entries: P grows by one with every N.
  int64_t N = 1;
  while (Levels(N, L, p).P() < P) ++N;
  const Levels levels(N, L, p);
  if (levels.P() != P) throw std::invalid_argument("oracle: P is no pyramid size");
  const at::Tensor sqc = sq.contiguous(), skc = sk.contiguous();
  std::vector<std::vector<int64_t>> tables;
  int64_t S = -1;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      std::vector<Emitted> e =
          emit_head(sqc.data_ptr<float>() + (b * H + h) * P,
                    skc.data_ptr<float>() + (b * Hkv + h / (H / Hkv)) * P, levels, k, m, causal);
      std::sort(e.begin(), e.end(),
                [](const Emitted& a, const Emitted& b2) { return a.key < b2.key; });
      std::vector<int64_t> t;
      for (const Emitted& x : e) t.push_back(x.index);
      if (S >= 0 && static_cast<int64_t>(t.size()) != S)
        throw std::logic_error("oracle: heads emitted different slot counts");
      S = static_cast<int64_t>(t.size());
      tables.push_back(std::move(t));
    }
  Selection out;
  out.slots = at::empty({B, H, S}, at::kLong);       // [B, H, S]
  out.inverse = at::full({B, H, P}, -1, at::kLong);  // [B, H, P]
  int64_t* sl = out.slots.data_ptr<int64_t>();
  int64_t* inv = out.inverse.data_ptr<int64_t>();
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t s = 0; s < S; ++s) {
      sl[bh * S + s] = tables[bh][s];
      inv[bh * P + tables[bh][s]] = s;
    }
  return out;
}

Selection plan(const at::Tensor& q, const at::Tensor& k, int64_t L, int64_t p, int64_t topk,
               int64_t m, bool causal) {
  return select(scores(q, L, p), scores(k, L, p), L, p, topk, m, causal);
}

at::Tensor pyramid(const at::Tensor& x, int64_t L, int64_t p) {
  const int64_t B = x.size(0), N = x.size(1), Hx = x.size(2), D = x.size(3);
  const Levels lv(N, L, p);
  std::vector<at::Tensor> levels{x};
  for (int64_t l = 1; l < L; ++l)  // [B, Nf / w, Hx, D]
    levels.push_back(x.narrow(1, 0, lv.Nf).reshape({B, lv.len(l), lv.w[l], Hx, D}).mean(2));
  return at::cat(levels, 1);  // [B, P, Hx, D]
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& slots, int64_t L, int64_t p) {
  if (q.scalar_type() != at::kDouble) throw std::invalid_argument("oracle: float64 only");
  const int64_t B = q.size(0), N = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t group = H / k.size(2), S = slots.size(2);
  const Levels lv(N, L, p);
  const at::Tensor pq = pyramid(q, L, p), pk = pyramid(k, L, p), pv = pyramid(v, L, p);
  const at::Tensor mask = at::ones({S, S}, at::kBool).triu(1);  // [S, S] true above diagonal
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<at::Tensor> batches;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<at::Tensor> heads;
    for (int64_t h = 0; h < H; ++h) {
      const at::Tensor idx = slots[b][h].contiguous();                        // [S]
      const at::Tensor qt = pq[b].select(1, h).index_select(0, idx);          // [S, D]
      const at::Tensor kt = pk[b].select(1, h / group).index_select(0, idx);  // [S, D]
      const at::Tensor vt = pv[b].select(1, h / group).index_select(0, idx);  // [S, D]
      const at::Tensor logits = at::matmul(qt, kt.t()) / std::sqrt(static_cast<double>(D));
      const at::Tensor attn = at::softmax(logits.masked_fill(mask, -inf), 1);  // [S, S]
      const at::Tensor ot = at::matmul(attn, vt);                              // [S, D]
      // Per-position sums: slot s adds to every base position of R(entry s) below N.
      std::vector<int64_t> targets, sources;
      const int64_t* ip = idx.data_ptr<int64_t>();
      for (int64_t s = 0; s < S; ++s) {
        const int64_t l = lv.level(ip[s]), i = lv.local(ip[s]);
        for (int64_t t = (i + 1) * lv.w[l] - 1; t <= (i + 2) * lv.w[l] - 2 && t < N; ++t) {
          targets.push_back(t);
          sources.push_back(s);
        }
      }
      const at::Tensor tgt = at::tensor(targets, at::kLong), src = at::tensor(sources, at::kLong);
      heads.push_back(at::zeros({N, D}, q.options()).index_add(0, tgt, ot.index_select(0, src)));
    }
    batches.push_back(at::stack(heads, 1));  // [N, H, D]
  }
  return at::stack(batches, 0);  // [B, N, H, D]
}

}  // namespace lighthouse::oracle
