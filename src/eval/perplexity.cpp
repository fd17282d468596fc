// Perplexity over whole sequences of a stream (perplexity.h).
#include "eval/perplexity.h"

#include <cmath>
#include <stdexcept>

#include "train/device.h"

namespace lighthouse::eval {

PplResult perplexity(EvalModel& m, const train::TokenStream& stream, int64_t context, int64_t batch,
                     model::AttentionMode mode, int64_t max_tokens,
                     const std::function<void(int64_t, int64_t)>& progress) {
  const int64_t available =
      stream.tokens.size() > 1 ? static_cast<int64_t>(stream.tokens.size() - 1) / context : 0;
  if (available == 0)
    throw std::runtime_error("--ppl: the data holds " + std::to_string(stream.tokens.size()) +
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
    const auto seq = loader.batch_at(first, B).to(m.device);      // [B, N + 1]
    const auto inputs = seq.narrow(1, 0, context).contiguous();   // [B, N]
    const auto targets = seq.narrow(1, 1, context).contiguous();  // [B, N]
    at::Tensor logits;                                            // [B, N, vocab]
    {
      train::AutocastScope autocast(m.bf16);
      logits = m.model->forward(inputs);
    }
    sum += torch::nn::functional::cross_entropy(
               logits.reshape({B * context, logits.size(2)}).to(at::kFloat),
               targets.reshape({B * context}),
               torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
               .item<double>();
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
