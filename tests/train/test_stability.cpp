// Stage-1 stability of the shipped default (the tiny config): on 5 seeds, no Lighthouse step's
// loss exceeds the median of the previous 10 steps by more than 1.0 nat (docs/stability.md).
// Runs `lighthouse train` for stage 1 only (train.stop_at = train.stage1_steps), the seeds as
// parallel processes of one thread each.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using testing::scratch_dir;

struct Spike {
  double excess = -1e9;  // loss - median of the previous 10 losses
  int64_t step = 0;
  double loss = 0, median = 0;
};

Spike worst_spike(const std::vector<std::pair<int64_t, double>>& losses) {
  Spike w;
  for (size_t i = 10; i < losses.size(); ++i) {
    std::vector<double> prev;
    for (size_t j = i - 10; j < i; ++j) prev.push_back(losses[j].second);
    std::sort(prev.begin(), prev.end());
    const double median = 0.5 * (prev[4] + prev[5]);
    if (losses[i].second - median > w.excess)
      w = {losses[i].second - median, losses[i].first, losses[i].second, median};
  }
  return w;
}

TEST(Stability, SpikeMeasureSeesASpike) {
  std::vector<std::pair<int64_t, double>> losses;
  for (int64_t s = 1; s <= 30; ++s) losses.emplace_back(s, 3.0 - 0.01 * double(s));
  losses[19].second = 5.0;  // step 20
  const Spike w = worst_spike(losses);
  EXPECT_EQ(w.step, 20);
  EXPECT_NEAR(w.excess, 5.0 - (3.0 - 0.01 * 14.5), 1e-12);
}

TEST(Stability, TinyConfigStageOneHasNoSpikeOnFiveSeeds) {
  const RunConfig defaults;  // the tiny config
  const int64_t stage1 = defaults.train.stage1_steps;
  ASSERT_EQ(defaults.train.attention, model::AttentionMode::Lighthouse);
  const std::string dir = scratch_dir("stability");
  std::vector<pid_t> pids;
  for (int seed = 0; seed < 5; ++seed) {
    const std::string run = dir + "/seed" + std::to_string(seed);
    pids.push_back(testing::spawn_cli(
        {"train", "--set", "run.seed=" + std::to_string(seed), "--set", "run.dir=" + run, "--set",
         "run.threads=1", "--set", "train.stop_at=" + std::to_string(stage1), "--set",
         "val.every=0", "--set", "checkpoint.every=0", "--set", "log.progress=false"},
        run + ".out", run + ".err"));
  }
  std::ostringstream summary;
  for (int seed = 0; seed < 5; ++seed) {
    const std::string run = dir + "/seed" + std::to_string(seed);
    const auto r = testing::wait_cli(pids[seed], run + ".out", run + ".err");
    ASSERT_EQ(r.exit_code, 0) << "seed " << seed << ": " << r.err;
    const auto losses = testing::step_losses(run);
    ASSERT_EQ(static_cast<int64_t>(losses.size()), stage1) << "seed " << seed;
    const Spike w = worst_spike(losses);
    summary << "seed " << seed << ": worst step " << w.step << " loss " << w.loss
            << " vs median " << w.median << " (+" << w.excess << ")\n";
    EXPECT_LE(w.excess, 1.0) << "seed " << seed << ": step " << w.step << " loss " << w.loss
                             << " exceeds the median of the previous 10 steps (" << w.median
                             << ") by more than 1.0 nat";
    EXPECT_LT(losses.back().second, losses.front().second - 2.0) << "seed " << seed
                                                                 << " did not learn";
  }
  std::cout << summary.str();
}

}  // namespace
}  // namespace lighthouse::train
