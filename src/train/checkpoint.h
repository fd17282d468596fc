// Checkpoints: a run's complete state at a step boundary (model parameters and buffers, AdamW
// state keyed by parameter name, RNG states, step, data cursor, resolved config) in one file.
//
// Format (little-endian): "LHCKPT\0\1", u64 header length, JSON header {"meta": {...},
// "tensors": {name: {dtype, shape, offset, nbytes}}}, raw tensor bytes, then a trailer of
// u32 CRC-32 of everything before it and u64 length of everything before it. Files are
// written to a temp name, fsynced and renamed, so a crash leaves the previous checkpoint intact.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lighthouse::train {

// A missing, truncated, corrupted or mismatching checkpoint; what() names the file.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Named tensors of a checkpoint (CPU, contiguous).
using TensorMap = std::map<std::string, at::Tensor>;

// Writes meta + tensors to `path` atomically (temp file, fsync, rename, fsync of the folder).
// Test hook: when the environment variable LIGHTHOUSE_FAULT_CKPT_KILL equals meta["step"],
// the writer stops halfway through the temp file and SIGKILLs its own process.
void write_checkpoint(const std::string& path, const nlohmann::json& meta,
                      const TensorMap& tensors);

struct CheckpointContents {
  nlohmann::json meta;
  TensorMap tensors;
};
// Reads and verifies (magic, lengths, CRC) a checkpoint; throws CheckpointError.
CheckpointContents read_checkpoint(const std::string& path);

// <run_dir>/checkpoints/step-<8 digits>.ckpt
std::string checkpoint_path(const std::string& run_dir, int64_t step);
// Finished checkpoints of a run, oldest first (temp files are ignored).
std::vector<std::string> list_checkpoints(const std::string& run_dir);
// Deletes all but the newest `keep` checkpoints and any stale temp files.
void prune_checkpoints(const std::string& run_dir, int64_t keep);

// The checkpoint `target` names (a file), or the newest readable one of a run directory
// (unreadable newer ones are reported on stderr and skipped). Throws CheckpointError, also
// when a file named step-N.ckpt holds another step in its header.
std::pair<std::string, CheckpointContents> read_newest_checkpoint(const std::string& target);

// Model and optimizer <-> tensors. Parameters and buffers are stored under "model/<name>",
// AdamW state under "optim/<name>/{exp_avg,exp_avg_sq,step}", RNG states under "rng/...".
void add_model(TensorMap& out, const torch::nn::Module& model);
void add_optimizer(TensorMap& out, const torch::nn::Module& model, torch::optim::AdamW& opt);
void add_rng(TensorMap& out);
// Copies the stored tensors into the model (shapes and dtypes must match; every parameter and
// buffer must be present) and the optimizer state; throws CheckpointError naming the tensor.
void restore_model(const CheckpointContents& ck, torch::nn::Module& model, const std::string& path);
void restore_optimizer(const CheckpointContents& ck, const torch::nn::Module& model,
                       torch::optim::AdamW& opt, const std::string& path);
void restore_rng(const CheckpointContents& ck);

}  // namespace lighthouse::train
