// Bucketed gradient averaging and ZeRO-1 parameter ownership (data_parallel.h).
#include "dist/data_parallel.h"

#include <algorithm>

namespace lighthouse::dist {
namespace {

// Copies the flat buffer back into the tensors it was packed from.
void unpack(const at::Tensor& flat, const std::vector<at::Tensor>& into) {
  int64_t off = 0;
  for (const auto& t : into) {
    t.copy_(flat.narrow(0, off, t.numel()).view(t.sizes()));
    off += t.numel();
  }
}

}  // namespace

void average_gradients(Group& g, const std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  torch::NoGradGuard no_grad;
  std::vector<std::vector<at::Tensor>> buckets;  // gradients per bucket
  int64_t bytes = bucket_bytes;
  for (const auto& p : params) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    const auto& grad = p.grad();
    const int64_t n = grad.numel() * static_cast<int64_t>(grad.element_size());
    if (buckets.empty() || bytes + n > bucket_bytes ||
        buckets.back().front().scalar_type() != grad.scalar_type()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(grad);
    bytes += n;
  }
  std::vector<at::Tensor> flats;  // one [numel] buffer per bucket
  for (const auto& b : buckets) {
    std::vector<at::Tensor> views;
    for (const auto& t : b) views.push_back(t.reshape({-1}));
    flats.push_back(torch::cat(views));
  }
  g.all_reduce_sum(flats, "gradient all-reduce");
  for (size_t i = 0; i < buckets.size(); ++i) {
    flats[i].div_(static_cast<double>(g.size()));
    unpack(flats[i], buckets[i]);
  }
}

std::vector<int> shard_owners(const std::vector<at::Tensor>& params, int ranks) {
  std::vector<size_t> order(params.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return params[a].numel() > params[b].numel(); });
  std::vector<int64_t> load(static_cast<size_t>(ranks), 0);
  std::vector<int> owner(params.size(), 0);
  for (const size_t i : order) {
    const auto r = std::min_element(load.begin(), load.end()) - load.begin();
    owner[i] = static_cast<int>(r);
    load[static_cast<size_t>(r)] += params[i].numel();
  }
  return owner;
}

void broadcast_from_owners(Group& g, const std::vector<at::Tensor>& params,
                           const std::vector<int>& owners) {
  torch::NoGradGuard no_grad;
  for (int r = 0; r < g.size(); ++r) {
    std::vector<at::Tensor> mine, views;
    for (size_t i = 0; i < params.size(); ++i)
      if (owners[i] == r) {
        mine.push_back(params[i]);
        views.push_back(params[i].detach().reshape({-1}));
      }
    if (mine.empty()) continue;
    at::Tensor flat = torch::cat(views);  // [sum of numel]
    g.broadcast(flat, r, "parameter broadcast");
    if (g.rank() != r) unpack(flat, mine);
  }
}

}  // namespace lighthouse::dist
