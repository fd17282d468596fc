// What a run may take from the machine, checked before it takes it: memory for the model and a
// step (train/failure.h: the lower bound, the refusal naming the keys, the CPU allocator's
// failure recognized), run.threads bounded by the cores present; and data.source entries that
// cannot be read (a symlink loop) named with the data.source prefix.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "model/llama.h"
#include "train/device.h"
#include "train/failure.h"
#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using testing::run_cli;
using testing::scratch_dir;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

TEST(Limits, TheMemoryLowerBoundCountsTheVocabularyAndTheActivations) {
  RunConfig c = testing::test_config();
  c.model.vocab = 256;
  const double P = parameter_count(c);
  // d 32, 3 layers, 2 + 1 heads of 16, ffn 64: attention 3 x 32 x 16 x 6, ffn 3 x 3 x 32 x 64,
  // norms 3 x 64 + 32, embeddings 2 x 256 x 32.
  EXPECT_EQ(P, 9216.0 + 18432.0 + 224.0 + 16384.0);
  int64_t built = 0;
  for (const auto& p : model::Llama(to_model_config(c))->parameters()) built += p.numel();
  EXPECT_EQ(P, double(built));
  c.model.vocab = int64_t{1} << 32;  // the vocabulary dominates: before, it was left out
  EXPECT_GT(parameter_count(c), 2.7e11);
  c.model.vocab = 256;
  const MemoryNeed one = least_memory(c, 1, /*on_cpu=*/true);
  EXPECT_EQ(one.model, 16 * P);
  const double tokens = 2.0 * 256;  // batch x context
  EXPECT_EQ(one.activations, 2 * tokens * 256 * 4 + 3 * tokens * 32 * 4);
  EXPECT_EQ(one.step, 12 * P + one.activations);
  EXPECT_EQ(least_memory(c, 2, true).model, 12 * P);  // AdamW's moments shared by 2 ranks
  EXPECT_EQ(least_memory(c, 1, false).bytes(), 4 * P);  // CUDA: the host builds the weights
  c.model.vocab = 0;  // not read from the data yet: no embeddings, no logits
  EXPECT_EQ(least_memory(c, 1, true).activations, 3 * tokens * 32 * 4);
}

TEST(Limits, AModelOrAStepBeyondTheMemoryLeftIsRefusedNamingTheKeys) {
  RunConfig c = testing::test_config();
  c.model.vocab = 256;
  const torch::Device cpu(torch::kCPU);
  EXPECT_NO_THROW(check_memory_fits(c, 1, cpu, int64_t{1} << 30));
  EXPECT_NO_THROW(check_memory_fits(c, 1, cpu, -1));  // unknown: nothing refused
  c.model.vocab = int64_t{1} << 32;
  std::string e = error_of([&] { check_memory_fits(c, 1, cpu, int64_t{16} << 30); });
  EXPECT_EQ(e.rfind("model: cannot train the model here: 2.75e+11 parameters need at least ", 0),
            0u)
      << e;
  EXPECT_NE(e.find("more than the 16 GiB this process can still allocate on this machine; "
                   "model.vocab_size = 4294967296 makes 2.75e+11 of them (2 x model.vocab_size "
                   "x model.d_model); reduce model.vocab_size"),
            std::string::npos)
      << e;
  c.model.vocab = 256;
  c.train.context = int64_t{1} << 40;
  e = error_of([&] { check_memory_fits(c, 1, cpu, int64_t{16} << 30); });
  EXPECT_EQ(e.rfind("train.context: a step of train.batch_size = 2 x train.context = "
                    "1099511627776 tokens needs at least ",
                    0),
            0u)
      << e;
  EXPECT_NE(e.find("reduce train.context or train.batch_size"), std::string::npos) << e;
  // On CUDA only the host's copy of the weights counts.
  EXPECT_NO_THROW(check_memory_fits(c, 1, torch::Device(torch::kCUDA, 0), int64_t{1} << 20));
  EXPECT_GE(available_host_memory(), 0);  // /proc/meminfo at least, on Linux
  EXPECT_LT(double(available_host_memory()), 1e6 * kGiB);
}

TEST(Limits, AbsurdSizesThroughTheBinaryStopBeforeAllocating) {
  const std::string dir = scratch_dir("absurd");
  testing::write_file(dir + "/test.toml", testing::kTestToml);
  const std::vector<std::string> base = {"train", "--config", dir + "/test.toml", "--set",
                                         "run.dir=" + dir + "/run"};
  auto args = base;
  args.insert(args.end(), {"--set", "model.vocab_size=4294967296"});
  auto r = run_cli(dir, args);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("lighthouse: error: model: cannot train the model here: 2.75e+11 "
                        "parameters",
                        0),
            0u)
      << r.err;
  EXPECT_NE(r.err.find("model.vocab_size = 4294967296 makes 2.75e+11 of them"), std::string::npos)
      << r.err;
  args = base;
  args.insert(args.end(), {"--set", "train.context=1099511627776", "--set",
                           "train.attention=dense", "--set", "train.stage1_steps=0"});
  r = run_cli(dir, args);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("lighthouse: error: train.context: a step of train.batch_size = 2 x "
                        "train.context = 1099511627776 tokens needs at least",
                        0),
            0u)
      << r.err;
}

TEST(Limits, TheCpuAllocatorsFailureIsRecognizedAsOutOfMemory) {
  std::string what;
  try {
    (void)at::empty({int64_t{1} << 60}, at::kByte);  // beyond any machine
  } catch (const std::exception& e) {
    EXPECT_TRUE(is_out_of_memory(e)) << e.what();
    what = e.what();
  }
  EXPECT_FALSE(what.empty());
  EXPECT_TRUE(is_out_of_memory(std::bad_alloc()));
  EXPECT_FALSE(is_out_of_memory(std::runtime_error("DefaultCPUAllocator")));  // not c10's
  const RunConfig c = testing::test_config();
  const std::string e = error_of([&] { throw_step_oom(c, 3, std::bad_alloc()); });
  EXPECT_EQ(e.rfind("train: out of memory in step 3 (train.batch_size = 2, train.context = 256",
                    0),
            0u)
      << e;
}

TEST(Limits, RunThreadsIsBoundedByTheCoresPresent) {
  const int64_t cores = std::thread::hardware_concurrency();
  ASSERT_GT(cores, 0);
  RunConfig c = testing::test_config();
  c.run.threads = cores;
  EXPECT_NO_THROW(validate(c));
  c.run.threads = cores + 1;
  EXPECT_EQ(error_of([&] { validate(c); }),
            "run.threads: must be at most the " + std::to_string(cores) +
                " CPU cores of this machine (0 = libtorch's default), got " +
                std::to_string(cores + 1));
  const std::string dir = scratch_dir("threads");
  const auto r = run_cli(dir, {"train", "--set", "run.threads=5000", "--set",
                               "run.dir=" + dir + "/run"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("run.threads: must be at most the"), std::string::npos) << r.err;
}

TEST(Limits, AnUnreadableEntryOfDataSourceIsNamedWithTheKey) {
  const std::string dir = scratch_dir("loop");
  std::filesystem::create_directories(dir + "/ds");
  testing::write_file(dir + "/ds/a.txt", std::string(4000, 'a'));
  ASSERT_EQ(::symlink("manifest.json", (dir + "/ds/manifest.json").c_str()), 0);  // a loop
  const auto r = run_cli(dir, {"train", "--set", "data.source=" + dir + "/ds", "--set",
                               "run.dir=" + dir + "/run", "--set", "run.threads=1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err, "lighthouse: error: data.source: cannot read " + dir +
                       "/ds/manifest.json: Too many levels of symbolic links\n");
}

}  // namespace
}  // namespace lighthouse::train
