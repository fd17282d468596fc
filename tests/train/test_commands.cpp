// The other commands through the binary: `lighthouse export` writes a Hugging Face model from a
// run directory or a checkpoint, and `lighthouse bench train` times both modes and writes JSON.
#include <gtest/gtest.h>

#include <filesystem>

#include "train/checkpoint.h"
#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using testing::run_cli;
using testing::scratch_dir;

TEST(Commands, ExportWritesAHuggingFaceModel) {
  const std::string dir = scratch_dir("export");
  testing::write_file(dir + "/t.toml", testing::kTestToml);
  auto r = run_cli(dir, {"train", "--config", dir + "/t.toml", "--set", "run.dir=" + dir + "/run",
                         "--set", "train.steps=2", "--set", "train.stage1_steps=1", "--set",
                         "schedule.warmup_steps=1", "--set", "val.every=0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli(dir, {"export", "--run", dir + "/run", "--out", dir + "/hf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("step 2"), std::string::npos) << r.out;
  const auto config = nlohmann::json::parse(testing::read_file(dir + "/hf/config.json"));
  EXPECT_EQ(config["num_hidden_layers"], 3);
  EXPECT_EQ(config["hidden_size"], 32);
  EXPECT_EQ(config["num_key_value_heads"], 1);
  EXPECT_GT(std::filesystem::file_size(dir + "/hf/model.safetensors"), 30000u);
  r = run_cli(dir, {"export", "--checkpoint", checkpoint_path(dir + "/run", 2), "--out",
                    dir + "/bf16", "--dtype", "bfloat16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(std::filesystem::file_size(dir + "/bf16/model.safetensors"),
            std::filesystem::file_size(dir + "/hf/model.safetensors"));
}

TEST(Commands, BenchTrainTimesBothModes) {
  const std::string dir = scratch_dir("bench");
  testing::write_file(dir + "/t.toml", testing::kTestToml);
  const auto r = run_cli(dir, {"bench", "train", "--config", dir + "/t.toml", "--steps", "2",
                               "--warmup", "1", "--json", dir + "/bench.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("lighthouse / dense tokens/s:"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(testing::read_file(dir + "/bench.json"));
  for (const char* mode : {"dense", "lighthouse"}) {
    EXPECT_GT(j["modes"][mode]["tokens_per_s"].get<double>(), 0) << mode;
    EXPECT_EQ(j["modes"][mode]["step_s"].size(), 2u) << mode;
  }
  EXPECT_GT(j["lighthouse_over_dense"].get<double>(), 0);
  EXPECT_EQ(j["tokens_per_step"], 2 * 256);
  // The model's FLOPs and the bound: Lighthouse layers attend over S < N slots, so the same
  // weights' products and less attention; the two-stage speedup follows from the step times.
  const auto& d = j["modes"]["dense"];
  const auto& l = j["modes"]["lighthouse"];
  EXPECT_EQ(d["flops_per_step"]["gemm"], l["flops_per_step"]["gemm"]);
  EXPECT_LT(l["flops_per_step"]["attention"].get<double>(),
            d["flops_per_step"]["attention"].get<double>());
  EXPECT_GT(d["model_tflops"].get<double>(), 0);
  EXPECT_GT(l["lower_bound_s"].get<double>(), 0);
  EXPECT_GT(j["measured_peaks_tflops"]["gemm"].get<double>(), 0);
  const double td = d["median_step_s"], tl = l["median_step_s"];
  EXPECT_NEAR(j["two_stage_speedup"]["10000+6000"].get<double>(),
              16000 * td / (10000 * tl + 6000 * td), 1e-9);
  EXPECT_NE(r.out.find("two-stage wall clock"), std::string::npos) << r.out;
  // The ceilings: the two bounds' ratio, and the measured dense step over the Lighthouse bound.
  const double bd = d["lower_bound_s"], bl = l["lower_bound_s"];
  EXPECT_NEAR(j["ceiling_bounds_ratio"].get<double>(), bd / bl, 1e-12);
  EXPECT_NEAR(j["ceiling_dense_over_lighthouse_bound"].get<double>(), td / bl, 1e-12);
  EXPECT_NE(r.out.find("ceilings of that ratio"), std::string::npos) << r.out;
}

// The kernel profile reads device kernels: a CPU run is refused by the flag's name.
TEST(Commands, BenchTrainProfileNeedsCuda) {
  const std::string dir = scratch_dir("bench-profile");
  testing::write_file(dir + "/t.toml", testing::kTestToml);
  const auto r = run_cli(dir, {"bench", "train", "--config", dir + "/t.toml", "--steps", "1",
                               "--profile-steps", "1", "--set", "run.device=cpu"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--profile-steps"), std::string::npos) << r.err;
}

// Any context (SPEC.md §2): 1000 is no multiple of the tile span p^(L-1) T = 4 * 2, and the
// dilated scorer's δ = 3 does not divide it; `train` and `bench train` run it on the CPU.
TEST(Commands, TrainAndBenchTrainAcceptARaggedContext) {
  const std::string dir = scratch_dir("ragged");
  std::string toml = testing::kTestToml;
  toml.replace(toml.find("context = 256"), 13, "context = 1000");
  testing::write_file(dir + "/t.toml", toml);
  auto r = run_cli(dir, {"train", "--config", dir + "/t.toml", "--set", "run.dir=" + dir + "/run",
                         "--set", "train.steps=2", "--set", "train.stage1_steps=1", "--set",
                         "schedule.warmup_steps=1", "--set", "val.every=0", "--set",
                         "lighthouse.scorer=dilated", "--set", "lighthouse.dilation=3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(checkpoint_path(dir + "/run", 2)));
  r = run_cli(dir, {"bench", "train", "--config", dir + "/t.toml", "--steps", "1", "--warmup",
                    "0", "--json", dir + "/bench.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(testing::read_file(dir + "/bench.json"));
  EXPECT_EQ(j["tokens_per_step"], 2 * 1000);
  EXPECT_GT(j["modes"]["lighthouse"]["tokens_per_s"].get<double>(), 0);
}

}  // namespace
}  // namespace lighthouse::train
