// Lighthouse configuration (SPEC.md §2) and the validated plan geometry for a sequence
// length. Torch-free: shared by the CPU reference, the ops layer and the trainer. Validation returns a message naming the
// parameter, its value and the rule; callers turn it into their own error type.
#pragma once

#include <cstdint>
#include <string>

#include "lighthouse/geometry.h"

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
  int64_t dilation = 4;     // δ of the dilated scorer, >= 1 (any N, SPEC.md §4)
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

// Validates cfg together with N and fills the geometry (include/lighthouse/geometry.h); on
// error returns false and sets *error. Any N >= 1 is served (SPEC.md §2): a last, shorter
// tile and a level-0 tail, never truncation.
bool make_geometry(const Config& cfg, int64_t N, Geometry* geom, std::string* error);

// N recovered from a pyramid size P = N + sum_{l>=1} Nf / p^l (unique: the tail is < p^c);
// -1 when P is not such a size.
int64_t seq_len_from_pyramid(int64_t P, int64_t L, int64_t p);

}  // namespace lighthouse
