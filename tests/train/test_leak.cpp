// `lighthouse bench leak` through the binary: with the plan recomputed the op's outputs at
// positions <= t move when inputs after t change (selection reads the whole tile, SPEC.md
// §8.3); with the plan held fixed, and for dense attention, they do not move at all.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using testing::run_cli;
using testing::scratch_dir;

// N = 256, L = 2, p = 4, k = 16, m = 8: T = 2 tiles of 128 positions.
const std::vector<std::string> kShape = {"--seq-len", "256", "--heads", "2", "--kv-heads", "1",
                                         "--dim", "16", "--levels", "2", "--pool", "4",
                                         "--topk", "16", "--tile-topk", "8"};

nlohmann::json run_leak(const std::string& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"bench", "leak", "--json", dir + "/leak.json"};
  args.insert(args.end(), kShape.begin(), kShape.end());
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = run_cli(dir, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("fixed-plan"), std::string::npos) << r.out;
  return nlohmann::json::parse(testing::read_file(dir + "/leak.json"));
}

TEST(BenchLeak, RecomputedPlanLeaksFixedPlanAndDenseDoNot) {
  const std::string dir = scratch_dir("leak");
  const auto j = run_leak(dir, {"--cuts", "0.25,0.5,1"});
  EXPECT_EQ(j["geometry"]["T"], 2);
  ASSERT_EQ(j["rows"].size(), 9u);  // 3 modes x 3 cuts
  double leaked = 0;
  for (const auto& r : j["rows"]) {
    const std::string mode = r["mode"];
    const double cut = r["cut"];
    EXPECT_GT(r["positions"].get<int64_t>(), 0);
    EXPECT_EQ(r["affected_earlier_tiles"], 0) << r.dump();
    if (mode != "lighthouse" || cut == 1) EXPECT_EQ(r["bitwise_different"], 0) << r.dump();
    if (mode == "lighthouse" && cut < 1) {
      // Positions of the same tile before the cut see the redrawn future through selection.
      EXPECT_GT(r["affected_fraction"].get<double>(), 0.05) << r.dump();
      EXPECT_GT(r["rel_change"].get<double>(), 1e-3) << r.dump();
      EXPECT_GT(r["reach"].get<int64_t>(), 0) << r.dump();
      leaked += r["affected_fraction"].get<double>();
    } else {
      // Dense, a fixed plan, or a cut at the tile's end: nothing at or before t moves.
      EXPECT_EQ(r["affected"], 0) << r.dump();
      EXPECT_LT(r["rel_change"].get<double>(), 1e-12) << r.dump();
      EXPECT_LT(r["max_rel_change"].get<double>(), 1e-12) << r.dump();
    }
  }
  EXPECT_GT(leaked, 0.1);
}

// The causal selection (SPEC.md §12): with the plan recomputed, nothing at or before t differs
// by a single bit, at any cut, in any tile.
TEST(BenchLeak, CausalSelectionLeaksExactlyNothing) {
  const std::string dir = scratch_dir("leakcausal");
  const auto j = run_leak(dir, {"--cuts", "0.125,0.25,0.5,0.75,1", "--selection", "causal"});
  EXPECT_EQ(j["inputs"]["selection"], "causal");
  ASSERT_EQ(j["rows"].size(), 15u);  // 3 modes x 5 cuts
  for (const auto& r : j["rows"]) {
    EXPECT_GT(r["positions"].get<int64_t>(), 0);
    EXPECT_EQ(r["bitwise_different"], 0) << r.dump();
    EXPECT_EQ(r["affected"], 0) << r.dump();
    EXPECT_EQ(r["rel_change"].get<double>(), 0.0) << r.dump();
  }
}

TEST(BenchLeak, BadSelectionIsRejected) {
  const std::string dir = scratch_dir("leaksel");
  std::vector<std::string> args = {"bench", "leak", "--selection", "online"};
  args.insert(args.end(), kShape.begin(), kShape.end());
  const auto r = run_cli(dir, args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--selection"), std::string::npos) << r.err;
}

TEST(BenchLeak, UnwritableJsonIsAnErrorNamingTheFile) {
  const std::string dir = scratch_dir("leakjson");
  std::vector<std::string> args = {"bench", "leak", "--json", dir + "/missing/leak.json"};
  args.insert(args.end(), kShape.begin(), kShape.end());
  const auto r = run_cli(dir, args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dir + "/missing/leak.json"), std::string::npos) << r.err;
}

TEST(BenchLeak, BadGeometryNamesTheRule) {
  const std::string dir = scratch_dir("leakgeom");
  const auto r = run_cli(dir, {"bench", "leak", "--seq-len", "260", "--levels", "2", "--pool",
                               "4", "--topk", "16", "--tile-topk", "7"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("tile_topk (m) must be even"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lighthouse::train
