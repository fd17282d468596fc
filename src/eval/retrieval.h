// The retrieval test (`lighthouse eval --retrieval`, docs/eval.md): held-out sequences of the
// run's validation text with data.needles' records and queries drawn from the eval's own seed
// (train/needles.h), scored at every query's value tokens under teacher forcing: the greedy
// (argmax over the whole vocabulary) token at each value position given the true prefix, and
// the log-loss of the true value tokens, bucketed by the key-query distance. The control runs
// the same sequences with dense attention limited to a sliding window: buckets beyond the
// window must fall to chance, or the test is not long-range.
//
// Chance: a value token is one of `symbols` ids drawn uniformly, so a model without the record
// answers a token right with probability 1/symbols and a whole value with 1/symbols^V; its
// best log-loss is ln(symbols) per value token.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/data.h"
#include "train/needles.h"

namespace lighthouse::eval {

struct RetrievalOptions {
  int64_t sequences = 32;  // held-out sequences scored
  uint64_t seed = 0;       // needle_seed(NeedleStream::Eval, seed, i) draws sequence i's needles
  // Upper edges of the distance buckets; the last bucket is open. Buckets starting at or past
  // the context are dropped, the last kept one is clipped to it.
  std::vector<int64_t> edges = {256, 1024, 4096, 16384, 65536};
  int64_t window = 512;          // the sliding-window control, 0 = none
  int64_t batch_tokens = 65536;  // sequences per forward pass: max(1, batch_tokens / context)
};

struct RetrievalBucket {
  int64_t lo = 0, hi = 0;  // distances in [lo, hi)
  int64_t queries = 0, exact = 0, tokens = 0, tokens_right = 0;
  double loss_sum = 0;     // nats over the bucket's value tokens
};

struct RetrievalScore {
  std::vector<RetrievalBucket> buckets;
  RetrievalBucket all;  // every query
};

// Logits of a batch of sequences: tokens [B, N] int64 -> [B, N, vocab].
using RetrievalLogits = std::function<at::Tensor(const at::Tensor&)>;

// Sequence i of the test: `text`'s sequence i mod its count (context + 1 ids) with the needles
// of needle_seed(Eval, opts.seed, i). Exposed for tests.
at::Tensor retrieval_sequence(const train::TokenStream& text, const train::NeedleConfig& c,
                              const train::NeedleIds& ids, int64_t context, uint64_t seed,
                              int64_t i, train::NeedlePlacement* placement = nullptr);

// Scores `logits` on opts.sequences sequences; progress(done, total) in sequences.
RetrievalScore score_retrieval(const train::TokenStream& text, const train::NeedleConfig& c,
                               const train::NeedleIds& ids, int64_t context,
                               const RetrievalOptions& opts, const RetrievalLogits& logits,
                               const std::function<void(int64_t, int64_t)>& progress = {});

// {"queries", "exact_match", "token_accuracy", "loss", "buckets": [{"range", "lo", "hi", ...}]}.
nlohmann::json retrieval_json(const RetrievalScore& s);
// The chance levels of `c` (header comment): {"exact_match", "token_accuracy", "loss"}.
nlohmann::json retrieval_chance(const train::NeedleConfig& c);

// The markdown table of an eval JSON's "retrieval" object: one row per bucket, exact match and
// loss of the full model and of the window control, then chance.
std::string retrieval_table(const nlohmann::json& retrieval);

}  // namespace lighthouse::eval
