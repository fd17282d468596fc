// NIAH prompts, trials and scoring (niah.h).
#include "eval/niah.h"

#include <torch/torch.h>

#include <stdexcept>
#include <string>

#include "train/rng.h"

namespace lighthouse::eval {

int64_t niah_min_context() {
  return static_cast<int64_t>(std::string(kNiahNeedle).size() + 3 +
                              std::string(kNiahQuery).size()) +
         16;
}

NiahCase make_niah_case(int64_t context, int64_t depth_percent, uint64_t seed) {
  if (context < niah_min_context())
    throw std::invalid_argument("--niah-contexts: " + std::to_string(context) +
                                " is too short for the prompt (at least " +
                                std::to_string(niah_min_context()) + " tokens)");
  if (depth_percent < 0 || depth_percent > 100)
    throw std::invalid_argument("--niah-depths: must be in [0, 100] (percent), got " +
                                std::to_string(depth_percent));
  train::SplitMix64 r(seed);
  NiahCase c;
  c.passkey = static_cast<int>(r.below(10));
  const std::string needle = kNiahNeedle + std::to_string(c.passkey) + ".\n";
  const std::string query = kNiahQuery;
  const int64_t F = context - static_cast<int64_t>(needle.size() + query.size());

  std::string filler;
  std::vector<int64_t> boundaries = {0};  // byte offsets where a word starts
  while (static_cast<int64_t>(filler.size()) < F) {
    const uint64_t len = 2 + r.below(kNiahMaxUnit - 2);  // 2..9 letters
    for (uint64_t i = 0; i < len; ++i) filler += static_cast<char>('a' + r.below(26));
    filler += ' ';
    boundaries.push_back(static_cast<int64_t>(filler.size()));
  }
  filler.resize(static_cast<size_t>(F));
  while (boundaries.back() > F) boundaries.pop_back();
  if (boundaries.back() != F) boundaries.push_back(F);

  const double target = static_cast<double>(depth_percent) / 100.0 * static_cast<double>(F);
  int64_t at = 0;
  for (const int64_t b : boundaries)
    if (std::abs(static_cast<double>(b) - target) < std::abs(static_cast<double>(at) - target))
      at = b;

  const std::string text = filler.substr(0, at) + needle + filler.substr(at) + query;
  c.tokens.assign(text.begin(), text.end());
  c.answer_pos = context - 1;
  c.needle_pos = at;
  c.filler_bytes = F;
  return c;
}

uint64_t niah_trial_seed(uint64_t seed, int64_t context, int64_t depth, int64_t trial) {
  return train::mix_seed(train::mix_seed(seed, static_cast<uint64_t>(context), 0x41a4),
                         static_cast<uint64_t>(depth), static_cast<uint64_t>(trial) + 1);
}

std::vector<int> niah_digits(const at::Tensor& logits) {
  const auto digits = logits.to(at::kCPU, at::kFloat).narrow(1, '0', 10);  // [B, 10]
  const auto idx = digits.argmax(1).to(at::kLong).contiguous();            // [B]
  std::vector<int> out(static_cast<size_t>(idx.size(0)));
  for (int64_t b = 0; b < idx.size(0); ++b) out[b] = static_cast<int>(idx.data_ptr<int64_t>()[b]);
  return out;
}

NiahResult run_niah(const NiahOptions& opts, const NiahPredictor& predict,
                    const std::function<void(int64_t, int64_t)>& progress) {
  if (opts.trials < 1)
    throw std::invalid_argument("--trials: must be >= 1, got " + std::to_string(opts.trials));
  if (opts.contexts.empty()) throw std::invalid_argument("--niah-contexts: no context to test");
  if (opts.depths.empty()) throw std::invalid_argument("--niah-depths: no depth to test");
  for (const int64_t c : opts.contexts) make_niah_case(c, 0, 0);  // validate before the work
  for (const int64_t d : opts.depths) make_niah_case(niah_min_context(), d, 0);

  const int64_t total =
      static_cast<int64_t>(opts.contexts.size() * opts.depths.size()) * opts.trials;
  int64_t done = 0;
  NiahResult res;
  for (const int64_t context : opts.contexts) {
    const int64_t per_batch = std::max<int64_t>(1, opts.batch_tokens / context);
    for (const int64_t depth : opts.depths) {
      NiahCell cell{context, depth, opts.trials, 0, 0};
      for (int64_t first = 0; first < opts.trials; first += per_batch) {
        const int64_t B = std::min(per_batch, opts.trials - first);
        auto tokens = torch::empty({B, context}, torch::kLong);  // [B, N]
        std::vector<int> keys;
        for (int64_t b = 0; b < B; ++b) {
          const NiahCase c =
              make_niah_case(context, depth, niah_trial_seed(opts.seed, context, depth, first + b));
          auto* row = tokens.data_ptr<int64_t>() + b * context;
          for (int64_t t = 0; t < context; ++t) row[t] = c.tokens[t];
          keys.push_back(c.passkey);
        }
        const auto got = niah_digits(predict(tokens));
        for (int64_t b = 0; b < B; ++b) cell.correct += got[b] == keys[b];
        done += B;
        if (progress) progress(done, total);
      }
      cell.accuracy = static_cast<double>(cell.correct) / static_cast<double>(cell.trials);
      res.mean += cell.accuracy;
      res.cells.push_back(cell);
    }
  }
  res.mean /= static_cast<double>(res.cells.size());
  return res;
}

}  // namespace lighthouse::eval
