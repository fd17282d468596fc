// c10d rendezvous and backends (group.h). Gloo is compiled in through USE_C10D_GLOO (the
// wheel's libtorch_cpu holds its symbols, Debian's libgloo-dev its headers); NCCL through
// USE_C10D_NCCL when libtorch has CUDA and nccl.h was found.
#include "dist/group.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

namespace lighthouse::dist {
namespace {

// The integer value of environment variable `name`, or `fallback` when unset.
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1 << 20)
    throw DistError(std::string("dist: environment variable ") + name +
                    " must be a non-negative integer, got \"" + v + "\"");
  return static_cast<int>(x);
}

std::string one_line(std::string s) {
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  const auto cut = s.find("Exception raised from");
  return cut == std::string::npos ? s : s.substr(0, cut);
}

}  // namespace

LaunchEnv launch_env() {
  LaunchEnv e;
  const bool has_rank = std::getenv("RANK") != nullptr;
  const bool has_world = std::getenv("WORLD_SIZE") != nullptr;
  if (!has_rank && !has_world) return e;
  if (has_rank != has_world)
    throw DistError(std::string("dist: environment variable ") +
                    (has_rank ? "WORLD_SIZE" : "RANK") + " is not set but " +
                    (has_rank ? "RANK" : "WORLD_SIZE") + " is (launch with torchrun)");
  e.present = true;
  e.rank = env_int("RANK", 0);
  e.world = env_int("WORLD_SIZE", 1);
  e.local_rank = env_int("LOCAL_RANK", e.rank);
  if (e.world < 1 || e.rank >= e.world)
    throw DistError("dist: RANK must be in [0, WORLD_SIZE = " + std::to_string(e.world) +
                    "), got " + std::to_string(e.rank));
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.master_addr = a;
  e.master_port = env_int("MASTER_PORT", 29500);
  if (const char* a = std::getenv("TORCHELASTIC_USE_AGENT_STORE"))
    e.agent_store = std::string(a) == "True";
  e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0);
  if (e.master_port < 1 || e.master_port > 65535)
    throw DistError("dist: MASTER_PORT must be in [1, 65535], got " +
                    std::to_string(e.master_port));
  return e;
}

Group::Group(const LaunchEnv& env, const torch::Device& device, std::chrono::milliseconds timeout)
    : rank_(env.rank), size_(env.world), local_rank_(env.local_rank), timeout_(timeout),
      label_("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world)),
      device_(device) {
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.isServer = rank_ == 0 && !env.agent_store;
    o.numWorkers = static_cast<size_t>(size_);
    o.waitWorkers = true;
    o.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    if (env.agent_store)
      store = c10::make_intrusive<c10d::PrefixStore>(
          "/worker/attempt_" + std::to_string(env.restart_count), store);
  } catch (const std::exception& e) {
    fail("rendezvous", "TCPStore at " + env.master_addr + ":" + std::to_string(env.master_port) +
                           ": " + one_line(e.what()));
  }
  connect(store, device);
}

Group::Group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, int local_rank,
             const torch::Device& device, std::chrono::milliseconds timeout, std::string label)
    : rank_(rank), size_(size), local_rank_(local_rank), timeout_(timeout),
      label_(std::move(label)), device_(device) {
  connect(store, device);
}

std::unique_ptr<Group> Group::sub_group(const std::string& name, const std::vector<int>& ranks) {
  int mine = -1;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i] < 0 || ranks[i] >= size_)
      fail("sub-group", name + " names rank " + std::to_string(ranks[i]) + " outside [0, " +
                            std::to_string(size_) + ")");
    if (ranks[i] == rank_) mine = static_cast<int>(i);
  }
  if (mine < 0) fail("sub-group", name + " does not hold this rank");
  const auto store = c10::make_intrusive<c10d::PrefixStore>("group_" + name, store_);
  return std::unique_ptr<Group>(new Group(store, mine, static_cast<int>(ranks.size()),
                                          local_rank_, device_, timeout_,
                                          label_ + " in the " + name + " group"));
}

void Group::connect(const c10::intrusive_ptr<c10d::Store>& store, const torch::Device& device) {
  store_ = store;
  try {
    if (device.is_cuda()) {
#ifdef USE_C10D_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout_;
      backend_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank_, size_, opts);
      backend_name_ = "nccl";
#else
      fail("init", "this build has no NCCL (CUDA tensors need it); rebuild with nccl.h found");
#endif
    } else {
      connect_gloo(store);
      backend_name_ = "gloo";
    }
  } catch (const DistError&) {
    throw;
  } catch (const std::exception& e) {
    fail("init", one_line(e.what()));
  }
}

Group::~Group() = default;

namespace {

// Test hook: LIGHTHOUSE_FAULT_GLOO_INIT="R:A" makes rank R report its first A Gloo connections
// as failed after they succeeded, so the ranks' agreement to connect again is exercised.
bool fault_gloo_init(int rank, int attempt) {
  const char* env = std::getenv("LIGHTHOUSE_FAULT_GLOO_INIT");
  if (!env || !*env) return false;
  int r = -1, a = 0;
  if (std::sscanf(env, "%d:%d", &r, &a) != 2)
    throw DistError(std::string("dist: LIGHTHOUSE_FAULT_GLOO_INIT must be RANK:ATTEMPTS, got \"") +
                    env + "\"");
  return r == rank && attempt < a;
}

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

void Group::connect_gloo(const c10::intrusive_ptr<c10d::Store>& store) {
  for (int attempt = 0;; ++attempt) {
    const auto scoped =
        c10::make_intrusive<c10d::PrefixStore>("gloo_" + std::to_string(attempt), store);
    std::string error;
    try {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout_);
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      backend_ = c10::make_intrusive<c10d::ProcessGroupGloo>(scoped, rank_, size_, opts);
      if (fault_gloo_init(rank_, attempt)) error = "LIGHTHOUSE_FAULT_GLOO_INIT";
    } catch (const DistError&) {
      throw;
    } catch (const std::exception& e) {
      error = one_line(e.what());
    }
    // Every rank publishes how its connection went and reads everyone's, so all of them
    // either keep the group or build it again.
    scoped->set("done/" + std::to_string(rank_), bytes(error.empty() ? "ok" : error));
    std::vector<std::string> keys;
    for (int r = 0; r < size_; ++r) keys.push_back("done/" + std::to_string(r));
    scoped->wait(keys, timeout_);
    std::string failed;
    for (int r = 0; r < size_ && failed.empty(); ++r) {
      const auto v = scoped->get(keys[static_cast<size_t>(r)]);
      const std::string what(v.begin(), v.end());
      if (what != "ok") failed = "rank " + std::to_string(r) + ": " + what;
    }
    if (failed.empty()) return;
    backend_.reset();
    if (attempt + 1 == kGlooConnectAttempts)
      fail("init", "Gloo could not connect in " + std::to_string(kGlooConnectAttempts) +
                       " attempts; last failure on " + failed);
    std::cerr << "lighthouse: dist: " << label_
              << ": Gloo connection attempt " << attempt + 1 << " of " << kGlooConnectAttempts
              << " failed on " << failed << "; connecting again" << std::endl;
  }
}

void Group::fail(const char* what, const std::string& reason) const {
  throw DistError("dist: " + label_ + ": " + what + " failed or timed out (dist.timeout_s = " +
                  std::to_string(timeout_.count() / 1000) + "): " + reason);
}

template <typename F>
void Group::guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const DistError&) {
    throw;
  } catch (const std::exception& e) {
    fail(what, one_line(e.what()));
  }
}

void Group::all_reduce_sum(std::vector<at::Tensor>& tensors, const char* what) {
  guarded(what, [&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one = {t};
      works.push_back(backend_->allreduce(one));
    }
    for (auto& w : works)
      if (!w->wait(timeout_)) fail(what, "the collective did not complete");
  });
}

void Group::all_reduce_max(at::Tensor& tensor, const char* what) {
  guarded(what, [&] {
    std::vector<at::Tensor> one = {tensor};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::MAX;
    if (!backend_->allreduce(one, o)->wait(timeout_))
      fail(what, "the collective did not complete");
  });
}

void Group::broadcast(at::Tensor& tensor, int src, const char* what) {
  guarded(what, [&] {
    std::vector<at::Tensor> one = {tensor};
    c10d::BroadcastOptions o;
    o.rootRank = src;
    if (!backend_->broadcast(one, o)->wait(timeout_))
      fail(what, "the collective did not complete");
  });
}

void Group::barrier(const char* what) {
  // A one-element all-reduce: Gloo's barrier ignores the timeout of wait().
  at::Tensor t = torch::ones({1}, backend_name_ == "nccl"
                                      ? torch::TensorOptions().device(torch::kCUDA, local_rank_)
                                      : torch::TensorOptions());
  std::vector<at::Tensor> one = {t};
  all_reduce_sum(one, what);
}

struct Pending::Impl {
  Group* group = nullptr;
  std::string what;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
};

Pending::Pending() = default;
Pending::Pending(Pending&&) noexcept = default;
Pending& Pending::operator=(Pending&& o) noexcept {
  if (this != &o) {
    if (impl_) {
      try {
        wait();
      } catch (...) {
      }
    }
    impl_ = std::move(o.impl_);
  }
  return *this;
}
Pending::~Pending() {
  if (!impl_) return;
  try {
    wait();
  } catch (...) {  // a destructor does not throw; the failure reaches whoever waits next
  }
}

void Pending::wait() {
  if (!impl_) return;
  auto impl = std::move(impl_);
  Group& g = *impl->group;
  g.guarded(impl->what.c_str(), [&] {
    for (auto& w : impl->works)
      if (!w->wait(g.timeout_)) g.fail(impl->what.c_str(), "the transfer did not complete");
  });
}

Pending Group::all_reduce_sum_async(std::vector<at::Tensor>& tensors, const char* what) {
  Pending p;
  p.impl_ = std::make_unique<Pending::Impl>();
  p.impl_->group = this;
  p.impl_->what = what;
  guarded(what, [&] {
    for (auto& t : tensors) {
      std::vector<at::Tensor> one = {t};
      p.impl_->works.push_back(backend_->allreduce(one));
    }
  });
  return p;
}

Pending Group::send_recv(const at::Tensor& send, int dst, const at::Tensor& recv, int src,
                         int tag, const char* what) {
  Pending p;
  p.impl_ = std::make_unique<Pending::Impl>();
  p.impl_->group = this;
  p.impl_->what = what;
  guarded(what, [&] {
    std::vector<at::Tensor> out = {send}, in = {recv};
    auto post_send = [&] { p.impl_->works.push_back(backend_->send(out, dst, tag)); };
    auto post_recv = [&] { p.impl_->works.push_back(backend_->recv(in, src, tag)); };
    if (rank_ % 2 == 0) {
      post_send();
      post_recv();
    } else {
      post_recv();
      post_send();
    }
  });
  return p;
}

}  // namespace lighthouse::dist
