// Needle in a haystack (SPEC.md §9): one passkey digit hidden in random letter filler (no
// digits) at a depth of the prompt; the model must name the digit at the answer position,
// scored as the argmax over the ten digit tokens (chance 0.10). The prompt template, in the
// phrasing of the built-in corpus's facts and recalls (docs/builtin-corpus.md):
//
//   <filler: lowercase words of 2-9 random letters, each followed by one space>
//   "\nfact: the code of the pass key is " D ".\n"      <- the needle, at the depth
//   <more filler>
//   "\nrecall: the code of the pass key is "            <- the answer position is its last byte
//
// The prompt is exactly `context` tokens; the needle starts at the filler-word boundary
// nearest depth x (filler bytes), so depth 0 opens the prompt and depth 100 ends the filler.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lighthouse::eval {

inline constexpr const char* kNiahNeedle = "\nfact: the code of the pass key is ";  // + D + ".\n"
inline constexpr const char* kNiahQuery = "\nrecall: the code of the pass key is ";
inline constexpr int64_t kNiahMaxUnit = 10;  // longest filler word plus its space, bytes

// Smallest context a prompt fits in (needle, query and 16 bytes of filler).
int64_t niah_min_context();

struct NiahCase {
  std::vector<uint16_t> tokens;  // [context] byte tokens
  int64_t answer_pos = 0;        // position whose next-token logits are scored (context - 1)
  int64_t needle_pos = 0;        // first byte of the needle
  int64_t filler_bytes = 0;      // filler bytes in the prompt
  int passkey = 0;               // 0..9
};

// One prompt; a pure function of (context, depth_percent, seed). Throws std::invalid_argument
// naming --niah-contexts / --niah-depths for a context below niah_min_context() or a depth
// outside [0, 100].
NiahCase make_niah_case(int64_t context, int64_t depth_percent, uint64_t seed);

struct NiahOptions {
  std::vector<int64_t> contexts = {4096, 8192, 16384, 32768, 65536, 98304};
  std::vector<int64_t> depths = {0, 15, 30, 50, 70, 85, 100};
  int64_t trials = 10;
  uint64_t seed = 0;
  int64_t batch_tokens = 65536;  // prompts per forward pass: max(1, batch_tokens / context)
};

struct NiahCell {
  int64_t context = 0, depth = 0, trials = 0, correct = 0;
  double accuracy = 0;
};

struct NiahResult {
  std::vector<NiahCell> cells;  // contexts outer, depths inner
  double mean = 0;              // mean accuracy over cells
};

// The seed of trial `t` of a cell: distinct for every (context, depth, trial).
uint64_t niah_trial_seed(uint64_t seed, int64_t context, int64_t depth, int64_t trial);

// Logits at the answer position for a batch of prompts: tokens [B, N] int64 -> [B, vocab].
using NiahPredictor = std::function<at::Tensor(const at::Tensor&)>;

// Every cell of opts with opts.trials prompts each; progress(done, total) in prompts.
NiahResult run_niah(const NiahOptions& opts, const NiahPredictor& predict,
                    const std::function<void(int64_t, int64_t)>& progress = {});

// The predicted digit of each row of logits [B, vocab]: argmax over tokens '0'..'9'.
std::vector<int> niah_digits(const at::Tensor& logits);

}  // namespace lighthouse::eval
