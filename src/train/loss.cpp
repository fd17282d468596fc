// Next-token loss (loss.h).
#include "train/loss.h"

#include "dist/cp_layout.h"
#include "train/device.h"

namespace lighthouse::train {

at::Tensor next_token_loss(model::Llama& model, const at::Tensor& batch,
                           const torch::Device& device, bool bf16, dist::Group* cp) {
  const int64_t B = batch.size(0);
  const auto on_device = batch.to(device);
  at::Tensor inputs = on_device.narrow(1, 0, batch.size(1) - 1).contiguous();   // [B, N]
  at::Tensor targets = on_device.narrow(1, 1, batch.size(1) - 1).contiguous();  // [B, N]
  if (cp) {  // this rank's two chunks: [B, N / cp]
    inputs = dist::cp_shard(inputs, 1, cp->rank(), cp->size());
    targets = dist::cp_shard(targets, 1, cp->rank(), cp->size());
  }
  const int64_t N = inputs.size(1);
  at::Tensor logits;                                            // [B, N, vocab]
  {
    AutocastScope autocast(bf16);
    logits = model->forward(inputs);
  }
  return torch::nn::functional::cross_entropy(
      logits.reshape({B * N, logits.size(2)}).to(at::kFloat), targets.reshape({B * N}));
}

}  // namespace lighthouse::train
