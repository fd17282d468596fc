// Perplexity over whole sequences of a stream (perplexity.h).
#include "eval/perplexity.h"

#include <cmath>
#include <stdexcept>

#include "train/loss.h"

namespace lighthouse::eval {

PplResult perplexity(EvalModel& m, const train::TokenStream& stream, int64_t context, int64_t batch,
                     model::AttentionMode mode, int64_t max_tokens,
                     const std::function<void(int64_t, int64_t)>& progress) {
  const int64_t available =
      stream.size() > 1 ? (stream.size() - 1) / context : 0;
  if (available == 0)
    throw std::runtime_error("--ppl: the data holds " + std::to_string(stream.size()) +
                             " tokens, fewer than one sequence of " + std::to_string(context) +
                             " + 1");
  int64_t n_seq = available;
  if (max_tokens > 0) n_seq = std::max<int64_t>(1, std::min(available, max_tokens / context));
  train::SequenceLoader loader(stream, context, 0, /*shuffle=*/false);
  const auto saved = m.model->attention_mode();
  m.model->set_attention_mode(mode);
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (int64_t first = 0; first < n_seq; first += batch) {
    const int64_t B = std::min(batch, n_seq - first);
    const at::Tensor mean =
        train::next_token_loss(m.model, loader.batch_at(first, B), m.device, m.bf16);  // []
    sum += mean.item<double>() * static_cast<double>(B * context);
    if (progress) progress(first + B, n_seq);
  }
  m.model->set_attention_mode(saved);
  PplResult r;
  r.sequences = n_seq;
  r.available = available;
  r.tokens = n_seq * context;
  r.loss = sum / static_cast<double>(r.tokens);
  r.ppl = std::exp(r.loss);
  return r;
}

}  // namespace lighthouse::eval
