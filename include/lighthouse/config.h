// Lighthouse configuration and plan geometry (SPEC.md §2). Torch-free: shared by the CPU
// reference, the CUDA kernels and the ops layer. Validation returns a message naming the
// parameter, its value and the rule; callers turn it into their own error type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lighthouse {

// Level-0 scores of SPEC.md §4: `Norm` (‖q_t‖, ‖k_t‖) or `Dilated` (norms of causal attention
// outputs inside the `dilation` strided sub-sequences; needs v).
enum class Scorer { Norm, Dilated };

// Which per-tile rule picks the refined entries (SPEC.md §4 stratified top-m/2, the published
// rule; §12 causal: decided in position order from information at each window's start).
enum class Selection { Stratified, Causal };

// Which stock SDPA kernel runs the inner (and dense) attention on CUDA. CPU always uses
// at::scaled_dot_product_attention's own choice.
enum class SdpaBackend { Auto, Cudnn, Flash, Efficient, Math };

struct Config {
  int64_t levels = 3;       // L >= 2
  int64_t pool = 4;         // p, power of two in [2, 16]
  int64_t topk = 2048;      // k per level, multiple of tile_topk
  int64_t tile_topk = 128;  // m per tile, even, >= 2
  Scorer scorer = Scorer::Norm;
  int64_t dilation = 4;     // δ of the dilated scorer, >= 1; N must be a multiple of it
  SdpaBackend backend = SdpaBackend::Auto;
  Selection selection = Selection::Causal;
};

// Empty when cfg is valid on its own (independent of the sequence length).
std::string validate(const Config& cfg);

Scorer parse_scorer(const std::string& name, std::string* error);
std::string scorer_name(Scorer s);
SdpaBackend parse_backend(const std::string& name, std::string* error);
std::string backend_name(SdpaBackend b);
Selection parse_selection(const std::string& name, std::string* error);
std::string selection_name(Selection s);

// Plan geometry for one sequence length N (SPEC.md §2, §4).
struct Geometry {
  int64_t N = 0;        // base sequence length
  int64_t L = 0;        // levels
  int64_t p = 0;        // pooling factor
  int64_t k = 0;        // per-level budget
  int64_t m = 0;        // per-tile budget
  int64_t T = 0;        // tiles = k / m
  int64_t c = 0;        // coarsest level = L - 1
  int64_t Nc = 0;       // entries at the coarsest level = N / p^c
  int64_t C = 0;        // coarsest entries per tile = Nc / T
  int64_t S_tile = 0;   // slots per tile = C + (L-1) * m * p
  int64_t S = 0;        // slots per head = T * S_tile = Nc + (L-1) * p * k
  int64_t P = 0;        // pyramid entries per head, all levels: sum_l N / p^l
  int64_t P1 = 0;       // pyramid entries of levels >= 1: P - N
  std::vector<int64_t> level_len;     // [L]   N / p^l
  std::vector<int64_t> level_offset;  // [L+1] off(l) = sum_{j<l} N / p^j, off(L) = P
  std::vector<int64_t> window;        // [L]   p^l

  // Level of pyramid index e (off(l) <= e < off(l+1)).
  int64_t level_of(int64_t e) const;
};

// Validates cfg together with N and fills the geometry; on error returns false and sets
// *error (never truncates: N must be divisible by p^(L-1) * T and C >= m, and by the
// dilation when the scorer is dilated).
bool make_geometry(const Config& cfg, int64_t N, Geometry* geom, std::string* error);

// Base positions R(l, i) that pyramid entry (l, i) scatters to (SPEC.md §6), clipped to N:
// [first, last] inclusive, empty when first > last.
struct Range {
  int64_t first;
  int64_t last;
};
Range scatter_range(const Geometry& g, int64_t level, int64_t i);

// Sort key of an emitted entry (SPEC.md §5), in units where level-0 tokens have integer keys.
double slot_key(const Geometry& g, int64_t level, int64_t i, bool selected);

// Empty when the dilated scorer's dilation divides N (SPEC.md §4), else the error naming it.
std::string check_dilation(int64_t dilation, int64_t N);

}  // namespace lighthouse

namespace lighthouse {
// Level geometry only (level_len, level_offset, window, P, P1) for L levels of factor p over
// N base positions; the tile fields stay zero. Used by stages that do not select.
Geometry level_geometry(int64_t L, int64_t p, int64_t N);

// N recovered from a pyramid size P = sum_{l<L} N / p^l; -1 when P is not such a size.
int64_t seq_len_from_pyramid(int64_t P, int64_t L, int64_t p);
}  // namespace lighthouse
