// The process group of a multi-process run: rank, world size and local rank from the variables
// torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), a c10d TCPStore
// rendezvous, and a c10d backend (NCCL for CUDA tensors, Gloo for CPU tensors); sub-groups of
// it (a 2-D mesh's context-parallel groups) over the same store. Every collective waits at most
// the group's timeout and throws DistError naming this rank.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace c10d {
class Backend;
class Store;
class Work;
}

namespace lighthouse::dist {

// A failed or timed-out collective, or a rendezvous that did not complete; what() is one
// line that starts with "dist: " and the rank's label ("rank R of W", with its mesh coordinates
// when set: Group::set_label).
class DistError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where this process stands in the launch, read from the environment. world == 1 and
// present == false when RANK / WORLD_SIZE are not set.
struct LaunchEnv {
  bool present = false;
  int rank = 0, world = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // The launcher hosts the rendezvous store (torchrun sets TORCHELASTIC_USE_AGENT_STORE=True):
  // every rank, 0 included, connects to it as a client, under the key prefix of this restart
  // attempt (TORCHELASTIC_RESTART_COUNT), as torch.distributed's env:// rendezvous does.
  bool agent_store = false;
  int restart_count = 0;
};
// Throws DistError naming the variable when one is set but malformed or inconsistent.
LaunchEnv launch_env();

class Group;

// Point-to-point transfers in flight (Group::send_recv). wait() blocks until every one has
// completed, or throws DistError naming the rank after the group's timeout. A Pending that is
// destroyed unwaited waits first (its buffers must outlive the transfer).
class Pending {
 public:
  Pending();
  ~Pending();
  Pending(Pending&&) noexcept;
  Pending& operator=(Pending&&) noexcept;
  void wait();

 private:
  friend class Group;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Group {
 public:
  // Joins the group described by `env` (world > 1) for tensors on `device`: NCCL when it is a
  // CUDA device (builds with NCCL only), else Gloo. Blocks until every rank has joined or
  // `timeout` passes.
  Group(const LaunchEnv& env, const torch::Device& device, std::chrono::milliseconds timeout);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // The sub-group of the ranks `ranks` of this group (this rank among them; the sub-group's
  // rank i is ranks[i]), joined over this group's rendezvous store under the prefix `name`
  // (one name per sub-group, the same on all its members), with this group's backend, device
  // and timeout. Only its members call it; blocks until all of them have joined.
  std::unique_ptr<Group> sub_group(const std::string& name, const std::vector<int>& ranks);
  // How errors name this rank: "rank R of W" unless set (e.g. with its mesh coordinates).
  void set_label(std::string label) { label_ = std::move(label); }
  const std::string& label() const { return label_; }

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  const std::string& backend_name() const { return backend_name_; }

  // In-place sums over all ranks; the tensors are reduced concurrently, then waited for.
  void all_reduce_sum(std::vector<at::Tensor>& tensors, const char* what);
  // The same, started and returned at once: the sums are in place once the Pending is waited.
  Pending all_reduce_sum_async(std::vector<at::Tensor>& tensors, const char* what);
  // In-place maximum of one tensor over all ranks.
  void all_reduce_max(at::Tensor& tensor, const char* what);
  // Rank `src`'s tensor into every rank's (same shape and dtype everywhere).
  void broadcast(at::Tensor& tensor, int src, const char* what);
  void barrier(const char* what);
  // Posts the send of `send` to rank `dst` and the receive into `recv` from rank `src` (same
  // shape and dtype as the peer's send) and returns at once; the caller computes, then waits.
  // Even ranks post the send first and odd ranks the receive, so a ring of blocking
  // point-to-point kernels (NCCL) cannot deadlock. `tag` tells apart transfers of one pair.
  Pending send_recv(const at::Tensor& send, int dst, const at::Tensor& recv, int src, int tag,
                    const char* what);

 private:
  friend class Pending;
  // A member of a sub-group: rank `rank` of `size` over `store`.
  Group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, int local_rank,
        const torch::Device& device, std::chrono::milliseconds timeout, std::string label);
  // Builds the backend for tensors on `device` over `store` (rank_ and size_ set).
  void connect(const c10::intrusive_ptr<c10d::Store>& store, const torch::Device& device);
  [[noreturn]] void fail(const char* what, const std::string& reason) const;
  // Builds the Gloo backend, whose construction connects every pair of ranks. A connection
  // can drop while the mesh forms on a loaded machine ("Connection closed by peer"); the
  // ranks then agree through the store and all connect again under a fresh key prefix, at
  // most kGlooConnectAttempts times, each attempt's failure logged on stderr.
  void connect_gloo(const c10::intrusive_ptr<c10d::Store>& store);
  static constexpr int kGlooConnectAttempts = 3;
  template <typename F>
  void guarded(const char* what, F&& f);

  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::chrono::milliseconds timeout_;
  std::string label_;
  torch::Device device_ = torch::kCPU;
  std::string backend_name_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
};

}  // namespace lighthouse::dist
