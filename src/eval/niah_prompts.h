// NIAH over a prompt file: prompts tokenized with the run's own tokenizer by
// `python -m lighthouse.eval.niah_prompts` (docs/eval.md), for vocabularies other than bytes.
// The file is JSON Lines: a header object, then one object per prompt:
//
//   {"format": "lighthouse-niah-prompts", "version": 1, "vocab_size": V, "eos_id": E,
//    "bos_id": B, "tokenizer": "...", "template": "...", "prompts": P, ...}
//   {"context": C, "depth": D, "trial": t, "answer": "7", "needle_pos": i,
//    "answer_start": s, "tokens": [C ids]}
//
// `tokens` is the prompt followed by the answer span tokens[s:], C ids in all: the model reads
// exactly C tokens. A prompt is answered right when the model's greedy next-token prediction
// at positions s-1 .. C-2 is tokens[s .. C-1] (teacher forcing: the same as greedily generating
// the span). Cells are (context, depth) pairs in the order they first appear.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "eval/niah.h"

namespace lighthouse::eval {

inline constexpr const char* kNiahPromptFormat = "lighthouse-niah-prompts";

struct NiahPromptHeader {
  int64_t vocab_size = 0, eos_id = -1, bos_id = -1;  // -1: unknown / none
  int64_t prompts = 0;
  std::string tokenizer, template_text;
};

struct NiahPrompt {
  int64_t context = 0, depth = 0, trial = 0;
  int64_t answer_start = 0;     // the span is tokens[answer_start, context)
  std::vector<int64_t> tokens;  // [context]
};

// Reads a prompt file one prompt at a time (memory: one line). Errors throw
// std::invalid_argument naming --niah-prompts, the file and the line.
class NiahPromptReader {
 public:
  explicit NiahPromptReader(const std::string& path);
  const NiahPromptHeader& header() const { return header_; }
  // The next prompt into p; false at the end of the file (after checking the prompt count).
  bool next(NiahPrompt& p);

 private:
  [[noreturn]] void fail(const std::string& msg) const;
  std::string path_;
  std::ifstream in_;
  NiahPromptHeader header_;
  int64_t line_ = 0, read_ = 0;
};

// Greedy next-token ids of a batch of prompts: tokens [B, N] int64 -> [B, N] int64.
using NiahGreedyPredictor = std::function<at::Tensor(const at::Tensor&)>;

// True when greedy[answer_start - 1 + i] == tokens[answer_start + i] over the whole span.
bool niah_span_correct(const NiahPrompt& p, const int64_t* greedy);

// Every prompt of the file, batched max(1, batch_tokens / context) at a time among consecutive
// prompts of one context; ids at or above model_vocab are an error naming the line.
// progress(done, total) in prompts.
NiahResult run_niah_prompts(const std::string& path, int64_t model_vocab,
                            const NiahGreedyPredictor& predict, int64_t batch_tokens,
                            const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace lighthouse::eval
