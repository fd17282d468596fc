// Next-token loss (loss.h).
#include "train/loss.h"

#include "train/device.h"

namespace lighthouse::train {

at::Tensor next_token_loss(model::Llama& model, const at::Tensor& batch,
                           const torch::Device& device, bool bf16) {
  const int64_t B = batch.size(0), N = batch.size(1) - 1;
  const auto on_device = batch.to(device);
  const auto inputs = on_device.narrow(1, 0, N).contiguous();   // [B, N]
  const auto targets = on_device.narrow(1, 1, N).contiguous();  // [B, N]
  at::Tensor logits;                                            // [B, N, vocab]
  {
    AutocastScope autocast(bf16);
    logits = model->forward(inputs);
  }
  return torch::nn::functional::cross_entropy(
      logits.reshape({B * N, logits.size(2)}).to(at::kFloat), targets.reshape({B * N}));
}

}  // namespace lighthouse::train
