// Held-out loss and perplexity of a model on a token stream: every whole sequence of
// `context` tokens (plus the shifted target) of the stream, in one attention mode, summed
// over tokens. Only the dense-mode loss measures quality (docs/eval.md).
#pragma once

#include <cstdint>
#include <functional>

#include "eval/model_source.h"
#include "train/data.h"

namespace lighthouse::eval {

struct PplResult {
  double loss = 0;     // mean next-token cross-entropy, nats
  double ppl = 0;      // exp(loss)
  int64_t tokens = 0;  // predicted tokens the mean is over
  int64_t sequences = 0;
  int64_t available = 0;  // sequences the stream holds (> sequences when capped)
};

// progress(done, total) after each batch, in sequences. max_tokens > 0 caps the sequences
// evaluated (the first ones of the stream). Throws std::runtime_error when the stream holds
// no whole sequence. The model's attention mode is restored afterwards.
PplResult perplexity(EvalModel& m, const train::TokenStream& stream, int64_t context, int64_t batch,
                     model::AttentionMode mode, int64_t max_tokens,
                     const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace lighthouse::eval
