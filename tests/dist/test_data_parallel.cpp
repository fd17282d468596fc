// Data and context parallel through the `lighthouse` binary on CPU (Gloo, 2 and 4 local ranks
// launched by --set dist.world_size): N steps of dp ranks equal N steps of one process with the same
// global batch (losses, weights and AdamW state), resume across a kill, resharding a dp = 2
// checkpoint to dp = 1 and dp = 4, collective time-outs naming the rank, config errors,
// dist.cp = 2 and 4 against one process, and the dp 2 x cp 2 mesh (equal, resumed, re-meshed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using testing::CliResult;
using testing::run_cli;
using testing::scratch_dir;
using testing::step_losses;

// The largest per-tensor relative error ||a - b|| / ||b|| (Frobenius) over the tensors named
// `prefix`*; every such key of `ref` must be in `got` (model weights, AdamW moments and steps).
// Printed, for the record.
double max_rel_diff(const TensorMap& got, const TensorMap& ref, const std::string& prefix) {
  double worst = 0;
  int compared = 0;
  for (const auto& [k, r] : ref) {
    if (k.rfind(prefix, 0) != 0) continue;
    const auto it = got.find(k);
    EXPECT_NE(it, got.end()) << k;
    if (it == got.end()) continue;
    const auto a = it->second.to(at::kDouble), b = r.to(at::kDouble);
    EXPECT_EQ(a.sizes(), b.sizes()) << k;
    const double scale = std::max(b.norm().item<double>(), 1e-30);
    worst = std::max(worst, (a - b).norm().item<double>() / scale);
    ++compared;
  }
  EXPECT_GT(compared, 10) << prefix;
  std::printf("  %s: largest relative error %.3g over %d tensors\n", prefix.c_str(), worst,
              compared);
  return worst;
}

// Extra --set values from LIGHTHOUSE_TEST_DIST_SETS (space-separated), for the same tests on
// GPUs over NCCL: "run.device=cuda train.precision=fp32" (docs/gpu.md). Empty on CPU.
std::vector<std::string> device_sets() {
  std::vector<std::string> out;
  const char* env = std::getenv("LIGHTHOUSE_TEST_DIST_SETS");
  std::istringstream in(env ? env : "");
  for (std::string s; in >> s;) out.push_back(s);
  return out;
}

class DataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch_dir("dp");
    testing::write_file(dir_ + "/test.toml", testing::kTestToml);
  }
  // A fresh run of the test config (8 steps, checkpoints every 2) with extra --set values.
  CliResult train(const std::string& run, const std::vector<std::string>& sets,
                  const std::map<std::string, std::string>& env = {}) const {
    std::vector<std::string> args = {"train", "--config", dir_ + "/test.toml", "--set",
                                     "run.dir=" + run};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    for (const auto& s : device_sets()) args.insert(args.end(), {"--set", s});
    return run_cli(dir_, args, env);
  }
  CliResult resume(const std::string& run, const std::vector<std::string>& sets) const {
    std::vector<std::string> args = {"train", "--set", "run.resume=" + run};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    for (const auto& s : device_sets()) args.insert(args.end(), {"--set", s});
    return run_cli(dir_, args);
  }
  // The run's losses and final weights equal the reference's to `tol` (relative; its AdamW
  // state to `optim_tol`, 1e-5 by default, or bitwise when tol = 0).
  static void expect_same_run(const std::string& run, const std::string& ref, double tol,
                              double optim_tol = 1e-5) {
    const auto a = step_losses(run), b = step_losses(ref);
    ASSERT_EQ(a.size(), 8u);
    ASSERT_EQ(b.size(), 8u);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      EXPECT_LE(std::abs(a[i].second - b[i].second), tol * std::abs(b[i].second))
          << "step " << a[i].first << ": " << a[i].second << " vs " << b[i].second;
    }
    const auto ca = read_checkpoint(checkpoint_path(run, 8)).tensors;
    const auto cb = read_checkpoint(checkpoint_path(ref, 8)).tensors;
    EXPECT_LE(max_rel_diff(ca, cb, "model/"), tol);
    // AdamW's moments are gradient statistics: the weights' 1e-7 differences move the last
    // gradients by ~1e-6 (a wrong gather or shard would be off by O(1)).
    EXPECT_LE(max_rel_diff(ca, cb, "optim/"), tol == 0 ? 0.0 : optim_tol);
  }
  std::string dir_;
};

TEST_F(DataParallel, TwoRanksEqualOneProcessWithTheSameGlobalBatch) {
  const std::string one = dir_ + "/one", two = dir_ + "/two";
  auto r = train(one, {"train.grad_accum=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = train(two, {"dist.world_size=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Rank 0 alone prints: one header, one line per step.
  EXPECT_NE(r.out.find(device_sets().empty() ? "x 2 ranks (gloo, data parallel 2"
                                             : "x 2 ranks (nccl, data parallel 2"),
            std::string::npos)
      << r.out;
  size_t lines = 0;
  for (size_t p = 0; (p = r.out.find("step      3/8", p)) != std::string::npos; ++p) ++lines;
  EXPECT_EQ(lines, 1u) << r.out;
  expect_same_run(two, one, 1e-6);
}

TEST_F(DataParallel, FourRanksEqualOneProcessWithTheSameGlobalBatch) {
  const std::string one = dir_ + "/one", four = dir_ + "/four";
  auto r = train(one, {"train.batch_size=1", "train.grad_accum=4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = train(four, {"dist.world_size=4", "train.batch_size=1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_run(four, one, 1e-6);
}

TEST_F(DataParallel, GradAccumOnTopOfTwoRanks) {
  const std::string one = dir_ + "/one", two = dir_ + "/two";
  auto r = train(one, {"train.batch_size=1", "train.grad_accum=4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = train(two, {"dist.world_size=2", "train.batch_size=1", "train.grad_accum=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_run(two, one, 1e-6);
}

TEST_F(DataParallel, ResumeAcrossAKillIsExact) {
  const std::string ref = dir_ + "/ref", run = dir_ + "/killed";
  auto r = train(ref, {"dist.world_size=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = train(run, {"dist.world_size=2"}, {{"LIGHTHOUSE_FAULT_KILL_AFTER_STEP", "5"}});
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
  EXPECT_EQ(list_checkpoints(run).back(), checkpoint_path(run, 4));
  r = resume(run, {});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_run(run, ref, 0.0);  // the same ranks and reductions: bitwise
}

TEST_F(DataParallel, TwoRankCheckpointReshardsToOneAndFourRanks) {
  const std::string ref = dir_ + "/ref", two = dir_ + "/two";
  auto r = train(ref, {"train.batch_size=1", "train.grad_accum=4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = train(two, {"dist.world_size=2", "train.batch_size=1", "train.grad_accum=2",
                  "train.stop_at=4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [name, sets] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"to1", {"dist.world_size=1", "train.grad_accum=4"}},
           {"to4", {"dist.world_size=4", "train.grad_accum=1"}}}) {
    SCOPED_TRACE(name);
    const std::string run = dir_ + "/" + name;
    testing::remove_tree(run);
    std::filesystem::create_directories(run + "/checkpoints");
    std::filesystem::copy_file(checkpoint_path(two, 4), checkpoint_path(run, 4));
    std::filesystem::copy_file(two + "/metrics.jsonl", run + "/metrics.jsonl");
    r = resume(run, sets);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_same_run(run, ref, 1e-6);
  }
  // The global batch is the run's recipe: changing it is refused, naming the key.
  r = resume(two, {"dist.world_size=1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("train.batch_size: dp x train.batch_size x train.grad_accum"),
            std::string::npos)
      << r.err;
}

TEST_F(DataParallel, CollectiveTimeOutFailsNamingTheRank) {
  const auto r = train(dir_ + "/stall", {"dist.world_size=2", "dist.timeout_s=2"},
                       {{"LIGHTHOUSE_FAULT_STALL_RANK", "1:6"}});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("dist: rank 0 of 2: gradient all-reduce failed or timed out"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("lighthouse: rank 0 of 2 exited with code 1"), std::string::npos) << r.err;
}

// Context parallel (dist.cp = world size): every rank reads the same sequences and holds two
// chunks of each; Lighthouse steps 1-5 run the CP op, dense steps 6-8 ring attention. The
// topk leaves one or more tiles per chunk (tiny: 4 tiles of 64 positions; 8 of 32 for cp = 4).
// The default causal selection runs with the previous chunk's halo (SPEC.md §10); tiles of
// C = 16 > m = 8 coarsest entries (8 for cp = 4), so it decides at every tile.
TEST_F(DataParallel, ContextParallelTwoRanksEqualOneProcess) {
  const std::string one = dir_ + "/one", two = dir_ + "/cp2";
  auto r = train(one, {"lighthouse.topk=32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = train(two, {"lighthouse.topk=32", "dist.world_size=2", "dist.cp=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("data parallel 1, context parallel 2"), std::string::npos) << r.out;
  expect_same_run(two, one, 5e-5, 1e-4);  // measured: weights 7.1e-6, AdamW 8.1e-6
}

TEST_F(DataParallel, ContextParallelFourRanksEqualOneProcess) {
  const std::string one = dir_ + "/one", four = dir_ + "/cp4";
  auto r = train(one, {"lighthouse.topk=64"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = train(four, {"lighthouse.topk=64", "dist.world_size=4", "dist.cp=4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_run(four, one, 5e-5, 1e-4);  // measured: weights 7.0e-6, AdamW 1.7e-5
}

// dist.dp = 2 x dist.cp = 2 over 4 processes (a 2-D mesh: CP groups {0, 1} and {2, 3}, data
// parallel across them): 8 steps equal one process with the same global batch of 4 sequences
// (the CP tolerance: the ring's LSE merge reassociates fp32 sums), a kill after step 5 resumes
// bitwise, and a 2 x 2 run stopped at step 2 re-meshed 2 x 1 -> 1 x 2 -> 4 x 1 (two steps each)
// finishes equal to it.
TEST_F(DataParallel, MeshTwoByTwoEqualsOneProcessResumesAndRemeshes) {
  const std::string one = dir_ + "/one", mesh = dir_ + "/mesh", killed = dir_ + "/killed";
  auto r = train(one, {"lighthouse.topk=32", "train.grad_accum=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = train(mesh, {"lighthouse.topk=32", "dist.world_size=4", "dist.cp=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("x 4 ranks (gloo, data parallel 2, context parallel 2"), std::string::npos)
      << r.out;
  expect_same_run(mesh, one, 5e-5, 1e-4);

  r = train(killed, {"lighthouse.topk=32", "dist.world_size=4", "dist.cp=2"},
            {{"LIGHTHOUSE_FAULT_KILL_AFTER_STEP", "5"}});
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
  EXPECT_EQ(list_checkpoints(killed).back(), checkpoint_path(killed, 4));
  r = resume(killed, {});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_run(killed, mesh, 0.0);  // the same mesh and reductions: bitwise

  const std::string re = dir_ + "/remesh";
  r = train(re, {"lighthouse.topk=32", "dist.world_size=4", "dist.cp=2", "train.stop_at=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& sets : std::vector<std::vector<std::string>>{
           {"dist.world_size=2", "dist.cp=1", "train.stop_at=4"},
           {"dist.world_size=2", "dist.cp=2", "train.grad_accum=2", "train.stop_at=6"},
           {"dist.world_size=4", "dist.cp=1", "train.batch_size=1", "train.grad_accum=1"}}) {
    r = resume(re, sets);
    ASSERT_EQ(r.exit_code, 0) << sets.front() << " " << sets[1] << ": " << r.err;
  }
  expect_same_run(re, mesh, 5e-5, 1e-4);
}

// A collective failing inside a CP group names the rank's mesh coordinates.
TEST_F(DataParallel, MeshTimeOutNamesTheMeshCoordinates) {
  const auto r = train(dir_ + "/stall", {"lighthouse.topk=32", "dist.world_size=4", "dist.cp=2",
                                         "dist.timeout_s=2"},
                       {{"LIGHTHOUSE_FAULT_STALL_RANK", "3:6"}});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("dist: rank 2 of 4 (dp 1 of 2, cp 0 of 2)"), std::string::npos) << r.err;
}

TEST_F(DataParallel, BadDistConfigNamesTheKey) {
  auto r = train(dir_ + "/a", {"dist.cp=2"});  // 16 / 8 = 2 tiles cannot make 4 chunks
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("dist.cp: 2 does not fit the Lighthouse layers: topk: context parallel "
                       "over 2 ranks"),
            std::string::npos)
      << r.err;
  r = train(dir_ + "/a2", {"dist.world_size=2", "dist.cp=4", "lighthouse.topk=64"});
  EXPECT_EQ(r.exit_code, 1);  // cp does not divide the world size
  EXPECT_NE(r.err.find("dist.cp: dist.dp x dist.cp must equal the world size 2, got 0 x 4"),
            std::string::npos)
      << r.err;
  r = train(dir_ + "/a3", {"dist.world_size=2", "dist.cp=2", "train.attention=dense",
                           "train.context=258"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("dist.cp: train.context = 258 must be a multiple of 2 x dist.cp = 4"),
            std::string::npos)
      << r.err;
  // The dilated scorer attends across chunks: context parallel refuses it by name.
  r = train(dir_ + "/a5", {"dist.world_size=2", "dist.cp=2", "lighthouse.topk=32",
                           "lighthouse.scorer=dilated"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("dist.cp: 2 does not fit the Lighthouse layers: scorer: context parallel "
                       "needs the norm scorer"),
            std::string::npos)
      << r.err;
  r = train(dir_ + "/b", {"dist.world_size=2", "dist.dp=3"});
  EXPECT_EQ(r.exit_code, 1);  // refused by the launcher, before any rank starts
  EXPECT_EQ(r.err.find("rank"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dist.dp: dist.dp x dist.cp must equal the world size 2, got 3 x 1"),
            std::string::npos)
      << r.err;
  r = train(dir_ + "/c", {"dist.world_size=-1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("dist.world_size: must be >= 0"), std::string::npos) << r.err;
  r = run_cli(dir_, {"train", "--config", dir_ + "/test.toml", "--set", "run.dir=" + dir_ + "/d"},
              {{"RANK", "0"}, {"WORLD_SIZE", "x"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("WORLD_SIZE must be a non-negative integer, got \"x\""), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace lighthouse::train
