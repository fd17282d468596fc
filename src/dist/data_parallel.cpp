// Bucketed gradient averaging and ZeRO-1 parameter ownership (data_parallel.h).
#include "dist/data_parallel.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <mutex>

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

// Parameter indices per bucket: consecutive parameters of one dtype, about `bucket_bytes`.
std::vector<std::vector<size_t>> make_buckets(const std::vector<at::Tensor>& params,
                                              int64_t bucket_bytes) {
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = bucket_bytes;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t n = params[i].numel() * static_cast<int64_t>(params[i].element_size());
    if (buckets.empty() || bytes + n > bucket_bytes ||
        params[buckets.back().front()].scalar_type() != params[i].scalar_type()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += n;
  }
  return buckets;
}

// The bucket's gradients as one flat [numel] buffer (missing gradients become zeros first).
at::Tensor pack(const std::vector<at::Tensor>& params, const std::vector<size_t>& bucket) {
  std::vector<at::Tensor> views;
  for (const size_t i : bucket) {
    const at::Tensor& p = params[i];
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    views.push_back(p.grad().reshape({-1}));
  }
  return torch::cat(views);
}

// The averaged flat buffer back into the bucket's gradients.
void unpack_average(const at::Tensor& flat, const std::vector<at::Tensor>& params,
                    const std::vector<size_t>& bucket, int ranks) {
  flat.div_(static_cast<double>(ranks));
  std::vector<at::Tensor> grads;
  for (const size_t i : bucket) grads.push_back(params[i].grad());
  unpack(flat, grads);
}

}  // namespace

void average_gradients(Group& g, const std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  torch::NoGradGuard no_grad;
  const auto buckets = make_buckets(params, bucket_bytes);
  std::vector<at::Tensor> flats;  // one [numel] buffer per bucket
  for (const auto& b : buckets) flats.push_back(pack(params, b));
  g.all_reduce_sum(flats, "gradient all-reduce");
  for (size_t i = 0; i < buckets.size(); ++i) unpack_average(flats[i], params, buckets[i], g.size());
}

struct OverlappedAverager::State {
  Group* g = nullptr;
  std::vector<at::Tensor> params;
  std::vector<std::vector<size_t>> buckets;
  std::vector<size_t> bucket_of;  // [params]
  std::mutex mu;
  bool armed = false;
  std::vector<bool> ready;        // [params]
  std::vector<size_t> waiting;    // [buckets]: parameters not ready yet
  int64_t next = -1;              // the next bucket to start (descending)
  std::vector<at::Tensor> flats;  // [buckets]
  std::vector<Pending> works;     // in start order
  int started_in_backward = 0;

  // Starts every bucket from `next` down that is complete, in order. Holds mu.
  void start_ready(bool in_backward) {
    while (next >= 0 && waiting[static_cast<size_t>(next)] == 0) {
      const auto b = static_cast<size_t>(next--);
      flats[b] = pack(params, buckets[b]);
      std::vector<at::Tensor> one = {flats[b]};
      works.push_back(g->all_reduce_sum_async(one, "gradient all-reduce"));
      if (in_backward) ++started_in_backward;
    }
  }
  // Holds mu.
  void mark(size_t i, bool in_backward) {
    if (ready[i]) return;
    ready[i] = true;
    --waiting[bucket_of[i]];
    start_ready(in_backward);
  }
};

namespace {

struct ReadyHook : torch::autograd::PostAccumulateGradHook {
  ReadyHook(OverlappedAverager::State* s, size_t i) : state(s), index(i) {}
  void operator()(const torch::autograd::Variable&) override {
    std::lock_guard<std::mutex> lock(state->mu);
    if (!state->armed) return;
    torch::NoGradGuard no_grad;
    state->mark(index, true);
  }
  OverlappedAverager::State* state;
  size_t index;
};

}  // namespace

OverlappedAverager::OverlappedAverager(Group& g, std::vector<at::Tensor> params,
                                       int64_t bucket_bytes)
    : s_(std::make_unique<State>()) {
  s_->g = &g;
  s_->params = std::move(params);
  s_->buckets = make_buckets(s_->params, bucket_bytes);
  s_->bucket_of.resize(s_->params.size());
  for (size_t b = 0; b < s_->buckets.size(); ++b)
    for (const size_t i : s_->buckets[b]) s_->bucket_of[i] = b;
  for (size_t i = 0; i < s_->params.size(); ++i)
    torch::autograd::impl::set_post_acc_grad_hooks(s_->params[i],
                                                   std::make_unique<ReadyHook>(s_.get(), i));
}

OverlappedAverager::~OverlappedAverager() {
  for (const auto& p : s_->params) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

void OverlappedAverager::arm() {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->armed = true;
  s_->ready.assign(s_->params.size(), false);
  s_->waiting.clear();
  for (const auto& b : s_->buckets) s_->waiting.push_back(b.size());
  s_->next = static_cast<int64_t>(s_->buckets.size()) - 1;
  s_->flats.assign(s_->buckets.size(), at::Tensor());
  s_->works.clear();
  s_->started_in_backward = 0;
}

void OverlappedAverager::finish() {
  torch::NoGradGuard no_grad;
  std::vector<Pending> works;
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    TORCH_INTERNAL_ASSERT(s_->armed, "OverlappedAverager::finish without arm");
    for (size_t i = 0; i < s_->params.size(); ++i) s_->mark(i, false);
    s_->armed = false;
    works = std::move(s_->works);
    in_backward_ = s_->started_in_backward;
  }
  for (auto& w : works) w.wait();
  for (size_t b = 0; b < s_->buckets.size(); ++b)
    unpack_average(s_->flats[b], s_->params, s_->buckets[b], s_->g->size());
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
