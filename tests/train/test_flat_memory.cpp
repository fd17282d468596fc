// Flat memory on CPU: 2,000 optimizer steps of a very small config through the training loop
// (both attention modes, validation, checkpoints, metrics) and the process's resident memory
// (VmRSS of /proc/self/status) after step 200 grows by less than 2% by the end.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "train/helpers.h"
#include "train/trainer.h"

namespace lighthouse::train {
namespace {

using testing::scratch_dir;

// Resident set size of this process in bytes.
int64_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // kB
  return -1;
}

TEST(FlatMemory, ResidentMemoryAfterStep200GrowsLessThanTwoPercentOver2000Steps) {
  const std::string dir = scratch_dir("mem");
  testing::write_file(dir + "/mem.toml", R"(
[run]
name = "mem"
threads = 1
[model]
d_model = 16
n_layers = 2
n_heads = 2
n_kv_heads = 1
head_dim = 8
ffn_hidden = 32
dense_layers = [0]
[lighthouse]
levels = 2
pool = 2
topk = 8
tile_topk = 4
[train]
steps = 2000
stage1_steps = 1000
context = 32
batch_size = 1
[schedule]
warmup_steps = 10
[data]
builtin_docs = 60
builtin_doc_bytes = 200
val_fraction = 0.1
[val]
every = 100
batches = 1
[checkpoint]
every = 250
keep = 2
[log]
every = 1000000
progress = false
)");
  auto s = open_session({dir + "/mem.toml", {{"run.dir", dir + "/run"}}});
  const int64_t tokens_per_step = s->cfg.train.context * s->cfg.train.batch_size;
  int64_t at200 = -1, at_end = -1, peak = 0;
  ConsoleHooks hooks;
  hooks.line = [](const std::string&) {};
  hooks.progress = [&](int64_t done, int64_t total, const std::string&) {
    const int64_t step = done / tokens_per_step;
    if (step < 200) return;
    const int64_t rss = rss_bytes();
    peak = std::max(peak, rss);
    if (at200 < 0) at200 = rss;
    if (done == total) at_end = rss;
  };
  const auto result = train(*s, hooks);
  ASSERT_EQ(s->step, 2000);
  ASSERT_EQ(result.losses.size(), 2000u);
  ASSERT_GT(at200, 0);
  ASSERT_GT(at_end, 0);
  const double growth = double(at_end - at200) / double(at200);
  std::cout << "VmRSS after step 200: " << at200 / 1024
            << " KiB, after step 2000: " << at_end / 1024 << " KiB (growth " << 100 * growth
            << "%), peak from step 200 on: " << peak / 1024 << " KiB\n";
  RecordProperty("rss_kib_step200", std::to_string(at200 / 1024));
  RecordProperty("rss_kib_step2000", std::to_string(at_end / 1024));
  EXPECT_LT(growth, 0.02);
}

}  // namespace
}  // namespace lighthouse::train
