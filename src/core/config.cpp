// Config validation (config.h, config_check.h), name parsing and plan geometry (SPEC.md §2, §4-§6).
#include "lighthouse/config.h"

#include "lighthouse/config_check.h"

#include <sstream>

namespace lighthouse {
namespace {

bool is_pow2(int64_t x) { return x > 0 && (x & (x - 1)) == 0; }

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

}  // namespace

Issue check(const Config& cfg) {
  if (cfg.levels < 2 || cfg.levels > 16)
    return {"levels", cat("levels (L) must be in [2, 16], got ", cfg.levels)};
  if (!is_pow2(cfg.pool) || cfg.pool < 2 || cfg.pool > 16)
    return {"pool", cat("pool (p) must be a power of two in [2, 16], got ", cfg.pool)};
  if (cfg.tile_topk < 2 || cfg.tile_topk % 2 != 0)
    return {"tile_topk", cat("tile_topk (m) must be even and >= 2, got ", cfg.tile_topk)};
  if (cfg.topk < cfg.tile_topk || cfg.topk % cfg.tile_topk != 0)
    return {"topk", cat("topk (k) must be a positive multiple of tile_topk (m) = ", cfg.tile_topk,
                        ", got ", cfg.topk)};
  if (cfg.dilation < 1) return {"dilation", cat("dilation (delta) must be >= 1, got ", cfg.dilation)};
  return {};
}

std::string validate(const Config& cfg) { return check(cfg).message; }

Scorer parse_scorer(const std::string& name, std::string* error) {
  if (name == "norm") return Scorer::Norm;
  if (name == "dilated") return Scorer::Dilated;
  *error = cat("scorer must be \"norm\" or \"dilated\", got \"", name, "\"");
  return Scorer::Norm;
}

std::string scorer_name(Scorer s) { return s == Scorer::Dilated ? "dilated" : "norm"; }

std::string check_dilation(int64_t dilation, int64_t N) {
  if (dilation >= 1 && N % dilation == 0) return {};
  return cat("dilation (delta) = ", dilation, " must divide the sequence length N = ", N,
             " (the dilated scorer splits N into delta strided sub-sequences)");
}

SdpaBackend parse_backend(const std::string& name, std::string* error) {
  if (name == "auto") return SdpaBackend::Auto;
  if (name == "cudnn") return SdpaBackend::Cudnn;
  if (name == "flash") return SdpaBackend::Flash;
  if (name == "efficient") return SdpaBackend::Efficient;
  if (name == "math") return SdpaBackend::Math;
  *error = cat("sdpa backend must be one of auto|cudnn|flash|efficient|math, got \"", name, "\"");
  return SdpaBackend::Auto;
}

std::string backend_name(SdpaBackend b) {
  switch (b) {
    case SdpaBackend::Auto: return "auto";
    case SdpaBackend::Cudnn: return "cudnn";
    case SdpaBackend::Flash: return "flash";
    case SdpaBackend::Efficient: return "efficient";
    case SdpaBackend::Math: return "math";
  }
  return "auto";
}

Selection parse_selection(const std::string& name, std::string* error) {
  if (name == "stratified") return Selection::Stratified;
  if (name == "causal") return Selection::Causal;
  *error = cat("selection must be \"stratified\" or \"causal\", got \"", name, "\"");
  return Selection::Stratified;
}

std::string selection_name(Selection s) { return s == Selection::Causal ? "causal" : "stratified"; }

int64_t Geometry::level_of(int64_t e) const {
  for (int64_t l = 0; l < L; ++l)
    if (e < level_offset[l + 1]) return l;
  return -1;
}

bool make_geometry(const Config& cfg, int64_t N, Geometry* g, std::string* error) {
  std::string err = validate(cfg);
  if (!err.empty()) {
    *error = err;
    return false;
  }
  if (N <= 0) {
    *error = cat("sequence length N must be positive, got ", N);
    return false;
  }
  const int64_t L = cfg.levels, p = cfg.pool, m = cfg.tile_topk, k = cfg.topk;
  const int64_t T = k / m;
  int64_t pc = 1;  // p^(L-1), guarded against overflow by comparing with N
  for (int64_t l = 1; l < L; ++l) {
    if (pc > N / p) {
      *error = cat("sequence length N = ", N, " is shorter than the coarsest window p^(L-1) = ",
                   p, "^", L - 1);
      return false;
    }
    pc *= p;
  }
  if (N % pc != 0 || (N / pc) % T != 0) {
    *error = cat("sequence length N = ", N, " must be divisible by p^(L-1) * T = ", pc, " * ", T,
                 " (T = topk / tile_topk)");
    return false;
  }
  const int64_t Nc = N / pc, C = Nc / T;
  if (C < m) {
    *error = cat("coarsest entries per tile C = N / (p^(L-1) * T) = ", C,
                 " must be >= tile_topk (m) = ", m, " (N = ", N, ", T = ", T,
                 "); use a longer sequence, fewer levels or a smaller topk");
    return false;
  }
  if (cfg.scorer == Scorer::Dilated) {
    err = check_dilation(cfg.dilation, N);
    if (!err.empty()) {
      *error = err;
      return false;
    }
  }
  *g = level_geometry(L, p, N);
  g->k = k;
  g->m = m;
  g->T = T;
  g->Nc = Nc;
  g->C = C;
  g->S_tile = C + (L - 1) * m * p;
  g->S = T * g->S_tile;
  return true;
}

Range scatter_range(const Geometry& g, int64_t level, int64_t i) {
  const int64_t w = g.window[level];
  Range r{(i + 1) * w - 1, (i + 2) * w - 2};
  if (r.last > g.N - 1) r.last = g.N - 1;
  return r;
}

double slot_key(const Geometry& g, int64_t level, int64_t i, bool selected) {
  const double w = static_cast<double>(g.window[level]);
  if (level == 0 || !selected) return static_cast<double>(i) * w;
  return static_cast<double>(i + 1) * w - 1.0 / static_cast<double>(int64_t{1} << level);
}

}  // namespace lighthouse

namespace lighthouse {

Geometry level_geometry(int64_t L, int64_t p, int64_t N) {
  Geometry g;
  g.N = N;
  g.L = L;
  g.p = p;
  g.c = L - 1;
  g.level_len.assign(L, 0);
  g.level_offset.assign(L + 1, 0);
  g.window.assign(L, 1);
  for (int64_t l = 0; l < L; ++l) {
    g.window[l] = l == 0 ? 1 : g.window[l - 1] * p;
    g.level_len[l] = N / g.window[l];
    g.level_offset[l + 1] = g.level_offset[l] + g.level_len[l];
  }
  g.P = g.level_offset[L];
  g.P1 = g.P - N;
  return g;
}

int64_t seq_len_from_pyramid(int64_t P, int64_t L, int64_t p) {
  if (L < 1 || p < 2 || P <= 0) return -1;
  int64_t pc = 1, sum = 0;  // p^(L-1), sum_{j<L} p^j
  for (int64_t j = 0; j < L; ++j) {
    sum += pc;
    if (j + 1 < L) pc *= p;
  }
  // P = N * sum / pc  =>  N = P * pc / sum, with N a multiple of pc.
  if (P % sum != 0) return -1;
  return P / sum * pc;
}

}  // namespace lighthouse
