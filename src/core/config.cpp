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

bool make_geometry(const Config& cfg, int64_t N, Geometry* g, std::string* error) {
  const std::string err = validate(cfg);
  if (!err.empty()) {
    *error = err;
    return false;
  }
  if (N <= 0) {
    *error = cat("sequence length N must be positive, got ", N);
    return false;
  }
  *g = level_geometry(cfg.levels, cfg.pool, N);
  g->k = cfg.topk;
  g->m = cfg.tile_topk;
  g->T = cfg.topk / cfg.tile_topk;
  tile_geometry(*g);
  return true;
}

int64_t seq_len_from_pyramid(int64_t P, int64_t L, int64_t p) {
  if (L < 1 || L > kMaxLevels || p < 2 || P <= 0) return -1;
  int64_t pc = 1, sum = 1;  // p^(L-1), sum_{j<L} p^j
  for (int64_t j = 1; j < L; ++j) {
    pc *= p;
    sum += pc;
  }
  // P = N + sum_{l>=1} Nf / p^l = Nc * sum + tail with tail < p^(L-1) < sum.
  const int64_t Nc = P / sum, tail = P - Nc * sum;
  if (tail >= pc) return -1;
  return Nc * pc + tail;
}

}  // namespace lighthouse
