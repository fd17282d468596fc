// Bad configs and flags through the `lighthouse` binary: each exits non-zero with one line on
// stderr that names the offending key (or flag), before any run directory is created.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using testing::run_cli;
using testing::scratch_dir;

struct BadCase {
  std::vector<std::string> args;
  std::string names;  // must appear in the error line
};

TEST(CliErrors, BadConfigsAndFlagsAreRejectedWithOneLineNamingTheKey) {
  const std::string dir = scratch_dir("cli");
  testing::write_file(dir + "/unknown.toml", "[model]\nd_model = 64\nlayers = 4\n");
  testing::write_file(dir + "/type.toml", "[model]\nd_model = \"wide\"\n");
  testing::write_file(dir + "/syntax.toml", "[model\nd_model = 64\n");
  testing::write_file(dir + "/range.toml", "[optim]\nlr = 5.0\n");
  const std::string run = "--set=run.dir=" + dir + "/run";
  const std::vector<BadCase> cases = {
      {{"--set", "model.d_modle=64"}, "model.d_modle: unknown key"},
      {{"--set", "optim.lr=fast"}, "optim.lr: expected a number"},
      {{"--set", "optim.lr=-1e-3"}, "optim.lr: must be in (0, 1)"},
      {{"--set", "optim.beta2=1"}, "optim.beta2"},
      {{"--set", "optim.eps=0"}, "optim.eps"},
      {{"--set", "optim.clip=-1"}, "optim.clip"},
      {{"--set", "train.steps=0"}, "train.steps: must be positive"},
      {{"--set", "train.stage1_steps=1000"}, "train.stage1_steps"},
      {{"--set", "train.attention=sparse"}, "train.attention: must be one of lighthouse | dense"},
      {{"--set", "train.batch_size=1.5"}, "train.batch_size: expected an integer"},
      {{"--set", "train.context=0"}, "train.context"},
      {{"--set", "train.stop_at=-2"}, "train.stop_at"},
      {{"--set", "lighthouse.pool=3"}, "lighthouse.pool"},
      {{"--set", "lighthouse.tile_topk=7"}, "lighthouse.tile_topk"},
      {{"--set", "lighthouse.scorer=strided"}, "lighthouse.scorer"},
      {{"--set", "lighthouse.dilation=0"}, "lighthouse.dilation: dilation (delta) must be >= 1"},
      {{"--set", "model.n_kv_heads=3"}, "model.n_kv_heads: must divide model.n_heads"},
      {{"--set", "model.head_dim=31"}, "model.head_dim: must be even"},
      {{"--set", "model.dense_layers=[0,9]"}, "model.dense_layers: layer 9 is outside"},
      {{"--set", "model.dense_layers=[0,1,2,3]"}, "model.dense_layers: all 4 layers are dense"},
      {{"--set", "schedule.decay=exponential"}, "schedule.decay"},
      {{"--set", "schedule.min_lr_factor=1.5"}, "schedule.min_lr_factor"},
      {{"--set", "train.precision=bf16", "--set", "run.device=cpu"},
       "train.precision: bf16 autocast needs a CUDA device"},
      {{"--set", "run.device=tpu"}, "run.device"},
      {{"--set", "log.progress=maybe"}, "log.progress: expected true or false"},
      {{"--set", "checkpoint.keep=0"}, "checkpoint.keep"},
      {{"--set", "data.val_fraction=0"}, "val.every: validation needs data.val_fraction > 0"},
      {{"--set", "data.source=/no/such/corpus"}, "data.source: no such file or directory"},
      {{"--set", "run.resume=/no/such/run"}, "run.resume: no such run directory or checkpoint"},
      {{"--set", "novalue"}, "--set: expected key=value"},
      {{"--optim.weight_decay", "-0.1"}, "optim.weight_decay"},
      {{"--model.n_layers", "four"}, "model.n_layers: expected an integer"},
      {{"--config", dir + "/unknown.toml"},
       "model.layers: unknown key (" + dir + "/unknown.toml:3)"},
      {{"--config", dir + "/type.toml"}, "model.d_model: expected an integer"},
      {{"--config", dir + "/syntax.toml"}, dir + "/syntax.toml:1: TOML syntax error"},
      {{"--config", dir + "/range.toml"}, "optim.lr: must be in (0, 1), got 5"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"train"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.push_back(run);
    const auto r = run_cli(dir, args);
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    EXPECT_NE(r.exit_code, 0) << shown;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << shown << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("lighthouse: error: ", 0), 0u) << shown << "\n" << r.err;
    EXPECT_NE(r.err.find(c.names), std::string::npos) << shown << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir + "/run")) << shown;
  }
  EXPECT_GE(cases.size(), 15u);
}

TEST(CliErrors, FlagErrorsNameTheFlag) {
  const std::string dir = scratch_dir("flags");
  const std::vector<BadCase> cases = {
      {{"train", "--config", dir + "/missing.toml"}, "--config"},
      {{"train", "--no-such-flag"}, "--no-such-flag"},
      {{"export", "--out", dir + "/x"}, "one of --run or --checkpoint is required"},
      {{"export", "--run", dir, "--out", dir + "/x"}, "--run: no readable checkpoint"},
      {{"export", "--run", dir, "--out", dir + "/x", "--dtype", "int8"}, "--dtype"},
      {{"bench", "train", "--steps", "0"}, "--steps"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(dir, c.args);
    EXPECT_NE(r.exit_code, 0) << c.args[0] << " " << c.names;
    const std::string first = r.err.substr(0, r.err.find('\n'));
    EXPECT_NE(first.find(c.names), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace lighthouse::train
