// `lighthouse compare`: on a tiny config it trains both runs and writes report.json with
// every field, report.md and valid plots; reusing the runs reproduces the report's numbers;
// the report's switch spike and recovery follow their definitions on hand-made logs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <utility>
#include <vector>

#include "eval/compare.h"
#include "train/helpers.h"

namespace lighthouse::eval {
namespace {

using train::testing::read_file;
using train::testing::run_cli;
using train::testing::scratch_dir;

bool is_png(const std::string& path) {
  const std::string b = read_file(path);
  return b.size() > 5000 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

TEST(Compare, TinyConfigWritesTheFullReport) {
  const std::string dir = scratch_dir("compare");
  train::testing::write_file(dir + "/t.toml", train::testing::kTestToml);
  const std::vector<std::string> niah = {"--niah-contexts", "256", "--niah-depths", "0,100",
                                         "--trials",        "2",   "--device",      "cpu"};
  std::vector<std::string> args = {
      "compare", "--config",  dir + "/t.toml", "--set", "data.builtin_docs=60",
      "--out",   dir + "/out"};
  args.insert(args.end(), niah.begin(), niah.end());
  auto r = run_cli(dir, args);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("compare: seed 0 (dense mode): dense"), std::string::npos) << r.out;
  const auto top = nlohmann::json::parse(read_file(dir + "/out/report.json"));
  // One pair: the summary has its row and no interval; the pair's own report is in it.
  EXPECT_EQ(top["budget"], "tokens");
  EXPECT_EQ(top["pairs"].size(), 1u);
  EXPECT_EQ(top["loss_delta"]["n"], 1);
  EXPECT_TRUE(top["loss_delta"]["ci95"].is_null());
  EXPECT_TRUE(top["criteria"][0]["pass"].is_null());  // not judged on one pair
  const auto& j = top["pairs_detail"][0];
  EXPECT_EQ(top["pairs"][0]["loss_delta"], j["loss_delta"]);
  for (const char* run : {"dense", "lighthouse"}) {
    EXPECT_GT(j["wall_clock_s"][run].get<double>(), 0) << run;
    EXPECT_GT(j["final_loss"][run].get<double>(), 0.5) << run;
    EXPECT_TRUE(j["niah_mean"][run].is_number()) << run;
    EXPECT_EQ(j["tokens"][run], 8 * 2 * 256) << run;
  }
  EXPECT_DOUBLE_EQ(j["speedup"].get<double>(), j["wall_clock_s"]["dense"].get<double>() /
                                                   j["wall_clock_s"]["lighthouse"].get<double>());
  EXPECT_DOUBLE_EQ(j["loss_delta"].get<double>(), j["final_loss"]["lighthouse"].get<double>() -
                                                      j["final_loss"]["dense"].get<double>());
  EXPECT_NE(j["final_loss"]["lighthouse"], j["final_loss"]["dense"]);  // two different models
  EXPECT_EQ(j["switch_step"], 5);
  EXPECT_TRUE(j["switch_spike"].is_number());
  EXPECT_TRUE(j.contains("recovery_steps"));
  EXPECT_TRUE(j["recovery_steps"].is_null() || j["recovery_steps"].get<int64_t>() >= 1);
  ASSERT_EQ(j["criteria"].size(), 3u);
  for (const auto& c : j["criteria"]) {
    for (const char* k : {"name", "target", "value", "pass"}) EXPECT_TRUE(c.contains(k)) << k;
    EXPECT_TRUE(c["pass"].is_boolean());
  }
  EXPECT_EQ(j["criteria"][0]["value"], j["speedup"]);
  EXPECT_EQ(j["criteria"][1]["value"], j["loss_delta"]);
  EXPECT_EQ(j["criteria"][2]["value"], j["recovery_steps"]);
  for (const char* f : {"loss_vs_step.png", "loss_vs_wall_clock.png", "niah.png"})
    EXPECT_TRUE(is_png(dir + "/out/" + f)) << f;
  EXPECT_EQ(top["command"].get<std::string>().rfind("lighthouse compare --config " + dir, 0), 0u);
  const std::string md = read_file(dir + "/out/report.md");
  EXPECT_NE(md.find("final loss (dense mode)"), std::string::npos);
  EXPECT_NE(md.find("## Paired seeds (1 pair, equal tokens)"), std::string::npos);
  EXPECT_NE(md.find("## Criteria of this pair"), std::string::npos);
  EXPECT_NE(md.find("not judged (one pair)"), std::string::npos);

  // Reusing both runs evaluates them again and gives the same numbers.
  args = {"compare",
          "--config",
          dir + "/t.toml",
          "--set",
          "data.builtin_docs=60",
          "--out",
          dir + "/again",
          "--dense-run",
          dir + "/out/dense",
          "--lighthouse-run",
          dir + "/out/lighthouse"};
  args.insert(args.end(), niah.begin(), niah.end());
  r = run_cli(dir, args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto k = nlohmann::json::parse(read_file(dir + "/again/report.json"))["pairs_detail"][0];
  EXPECT_EQ(k["final_loss"], j["final_loss"]);
  EXPECT_EQ(k["niah_mean"], j["niah_mean"]);
  EXPECT_EQ(k["wall_clock_s"], j["wall_clock_s"]);
  EXPECT_FALSE(std::filesystem::exists(dir + "/again/dense"));  // nothing trained

  // A run folder without its checkpoints (brought back from a GPU machine) serves as a reused
  // run through the eval.json the comparison stored in it, for the same evaluation options.
  const std::string carried = dir + "/carried/dense";
  std::filesystem::create_directories(carried);
  for (const char* f : {"config.json", "metrics.jsonl", "eval.json"})
    train::testing::write_file(carried + "/" + f, read_file(dir + "/out/dense/" + f));
  std::vector<std::string> reuse_args = {"compare",        "--config", dir + "/t.toml",
                                         "--set",          "data.builtin_docs=60",
                                         "--out",          dir + "/carried-out",
                                         "--dense-run",    carried,
                                         "--lighthouse-run", dir + "/out/lighthouse"};
  reuse_args.insert(reuse_args.end(), niah.begin(), niah.end());
  r = run_cli(dir, reuse_args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(read_file(dir + "/carried-out/report.json"))["loss_delta"],
            top["loss_delta"]);
  EXPECT_FALSE(std::filesystem::exists(carried + "/checkpoints"));  // nothing written there
  reuse_args[6] = dir + "/carried-out-2";
  reuse_args.insert(reuse_args.end(), {"--max-tokens", "256"});
  r = run_cli(dir, reuse_args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--dense-run: " + carried + " has no checkpoints and no eval.json made "
                       "with this comparison's evaluation options"),
            std::string::npos)
      << r.err;

  // `lighthouse plot` draws the same runs' curves.
  r = run_cli(dir, {"plot", dir + "/out/dense", dir + "/out/lighthouse", "--x", "wall", "--out",
                    dir + "/curves.svg"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(read_file(dir + "/curves.svg").find("<svg"), std::string::npos);

  // A reused run must match the comparison's config.
  args = {"compare",
          "--config",
          dir + "/t.toml",
          "--set",
          "data.builtin_docs=60",
          "--set",
          "run.seed=3",
          "--out",
          dir + "/bad",
          "--dense-run",
          dir + "/out/dense",
          "--lighthouse-run",
          dir + "/out/lighthouse"};
  r = run_cli(dir, args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--lighthouse-run: " + dir +
                       "/out/lighthouse differs from the comparison's config: run.seed: the run "
                       "has 0, the comparison 3"),
            std::string::npos)
      << r.err;
  r = run_cli(dir, {"compare", "--config", dir + "/t.toml", "--set", "data.builtin_docs=60",
                    "--out", dir + "/swap", "--dense-run", dir + "/out/lighthouse"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("expected \"dense\""), std::string::npos) << r.err;
}

RunLog log_of(const std::vector<double>& losses, const std::string& mode_until, int64_t sw) {
  RunLog r;
  r.dir = r.name = mode_until;
  for (size_t i = 0; i < losses.size(); ++i) {
    StepRecord s;
    s.step = static_cast<int64_t>(i) + 1;
    s.loss = losses[i];
    s.step_time_s = sw > 0 && s.step <= sw ? 0.25 : 1.0;
    s.wall_s = (i ? r.steps.back().wall_s : 0) + s.step_time_s;
    s.mode = sw > 0 && s.step <= sw ? "lighthouse" : "dense";
    s.tokens = s.step * 100;
    r.steps.push_back(s);
  }
  r.switch_step = sw;
  return r;
}

nlohmann::json eval_of(double loss, double niah) {
  return {{"ppl", {{"dense", {{"loss", loss}, {"ppl", std::exp(loss)}, {"tokens", 10}}}}},
          {"niah", {{"mean", niah}, {"cells", nlohmann::json::array()}}}};
}

// 50 steps, Lighthouse for the first 20; dense from scratch at 2.0 after step 20.
std::vector<double> losses(std::initializer_list<std::pair<int, double>> runs) {
  std::vector<double> v;
  for (const auto& [n, loss] : runs) v.insert(v.end(), static_cast<size_t>(n), loss);
  return v;
}

TEST(Compare, SpikeRecoveryAndCriteriaFollowTheirDefinitions) {
  const RunLog dense = log_of(losses({{19, 3.0}, {1, 2.2}, {30, 2.0}}), "dense", -1);
  // Switch after step 20: 2.4 -> 4.0 (spike 1.6). Step 22 alone dips below the dense run; the
  // 20-step average is first at or below it from step 25 (2.5 x 3 + 1.9 x 17 = 39.8 <= 40):
  // recovery 5 steps after the switch, not 2.
  const RunLog lh =
      log_of(losses({{19, 3.0}, {1, 2.4}, {1, 4.0}, {1, 1.9}, {5, 2.5}, {23, 1.9}}), "lh", 20);
  const auto r = compare_report(dense, lh, eval_of(1.50, 0.6), eval_of(1.51, 0.5));
  EXPECT_DOUBLE_EQ(r["wall_clock_s"]["dense"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(r["wall_clock_s"]["lighthouse"].get<double>(), 35.0);
  EXPECT_DOUBLE_EQ(r["speedup"].get<double>(), 50.0 / 35.0);
  EXPECT_NEAR(r["switch_spike"].get<double>(), 1.6, 1e-12);
  EXPECT_NEAR(r["switch_excess"].get<double>(), 2.0, 1e-12);  // 4.0 vs the dense run's 2.0
  EXPECT_TRUE(r["stage1_dense_val"].is_null());                // no validation records
  EXPECT_EQ(r["recovery_steps"], 5);
  EXPECT_NEAR(r["loss_delta"].get<double>(), 0.01, 1e-12);
  EXPECT_EQ(r["niah_mean"]["lighthouse"], 0.5);
  EXPECT_TRUE(r["criteria"][0]["pass"].get<bool>());  // 1.43 >= 1.3
  EXPECT_TRUE(r["criteria"][1]["pass"].get<bool>());  // 0.01 <= 0.02
  EXPECT_TRUE(r["criteria"][2]["pass"].get<bool>());  // 5 <= 2000
  // Stage 1 in dense mode: the last dense-mode validation at or before the switch (step 20,
  // not the Lighthouse-mode record nor the one after the switch) against the dense run's.
  RunLog dv = dense, lv = lh;
  dv.vals = {{10, 0, 2.9, "dense"}, {20, 0, 2.1, "dense"}, {30, 0, 1.9, "dense"}};
  lv.vals = {{10, 0, 3.0, "dense"}, {20, 0, 1.7, "lighthouse"}, {20, 0, 2.5, "dense"},
             {30, 0, 1.95, "dense"}};
  const auto v = compare_report(dv, lv, eval_of(1.50, 0.6), eval_of(1.51, 0.5));
  EXPECT_EQ(v["stage1_dense_val"]["step"], 20);
  EXPECT_NEAR(v["stage1_dense_val"]["gap"].get<double>(), 0.4, 1e-12);
  EXPECT_NE(report_markdown(v).find("stage 1 in dense mode (validation at step 20): 2.5000 vs "
                                    "dense 2.1000 (+0.4000)"),
            std::string::npos);
  // NIAH chance: the built-in generator's is printed; a prompt file's scoring has none.
  EXPECT_NE(report_markdown(v).find("| NIAH mean (dense mode) |"), std::string::npos);
  nlohmann::json with_chance = eval_of(1.50, 0.6);
  with_chance["niah"]["chance"] = 0.1;
  EXPECT_NE(report_markdown(compare_report(dv, lv, with_chance, eval_of(1.51, 0.5)))
                .find("| NIAH mean (dense mode, chance 0.10) |"),
            std::string::npos);
  // Below the dense run on single steps only: never recovered.
  const RunLog never = log_of(
      losses({{19, 3.0}, {1, 2.4}, {1, 4.0}, {1, 1.9}, {9, 2.5}, {1, 1.9}, {18, 2.1}}), "lh", 20);
  const auto n = compare_report(dense, never, eval_of(1.5, 0.6), eval_of(1.6, 0.5));
  EXPECT_TRUE(n["recovery_steps"].is_null());
  EXPECT_FALSE(n["criteria"][1]["pass"].get<bool>());  // 0.1 > 0.02
  EXPECT_FALSE(n["criteria"][2]["pass"].get<bool>());
  EXPECT_NE(report_markdown(n).find("did not come back"), std::string::npos);
}


// The interval arithmetic on fixed numbers: the three 64K real-text pairs of issue 28.
TEST(Paired, IntervalOfFixedDifferences) {
  const Interval iv = paired_interval({0.009, 0.112, 0.089});
  EXPECT_EQ(iv.n, 3);
  EXPECT_NEAR(iv.mean, 0.07, 1e-12);
  EXPECT_NEAR(iv.sd, std::sqrt(0.005846 / 2), 1e-9);
  EXPECT_NEAR(iv.t, 4.3027, 1e-4);
  EXPECT_NEAR(iv.hi, 0.07 + 4.3027 * std::sqrt(0.005846 / 2) / std::sqrt(3.0), 1e-6);
  EXPECT_NEAR(iv.lo + iv.hi, 2 * iv.mean, 1e-12);
  const Interval one = paired_interval({0.05});
  EXPECT_TRUE(std::isnan(one.sd) && std::isnan(one.hi));  // undefined, never 0
  EXPECT_NEAR(t_quantile_975(40), 2.0211, 1e-3);
  EXPECT_NEAR(t_quantile_975(120), 1.9799, 1e-3);
  EXPECT_NEAR(t_quantile_975(100000), 1.95998, 1e-4);
  EXPECT_TRUE(std::isnan(t_quantile_975(0)));

  // The verdict is on the upper bound: a mean inside the margin with a wide interval fails.
  nlohmann::json pair = {{"final_loss", {{"dense", 2.0}, {"lighthouse", 2.01}}},
                         {"wall_clock_s", {{"dense", 10.0}, {"lighthouse", 5.0}}},
                         {"speedup", 2.0},
                         {"tokens", {{"dense", 1}, {"lighthouse", 1}}},
                         {"recovery_steps", 3}};
  std::vector<nlohmann::json> pairs;
  for (const double d : {0.009, 0.112, 0.089}) {
    pair["loss_delta"] = d;
    pairs.push_back(pair);
  }
  auto r = paired_report(pairs, {0, 1, 2}, Budget::Tokens, 0.02);
  EXPECT_NEAR(r["loss_delta"]["mean"].get<double>(), 0.07, 1e-12);
  EXPECT_NEAR(r["loss_delta"]["ci95"][1].get<double>(), iv.hi, 1e-12);
  EXPECT_FALSE(r["criteria"][0]["pass"].get<bool>());
  EXPECT_TRUE(r["criteria"][1]["pass"].get<bool>());  // speedup 2 >= 1.3
  for (auto& p : pairs) p["loss_delta"] = p["loss_delta"].get<double>() - 0.25;
  r = paired_report(pairs, {0, 1, 2}, Budget::Time, 0.0);
  EXPECT_TRUE(r["criteria"][0]["pass"].get<bool>());  // upper bound 0.204 - 0.25 < 0
  EXPECT_EQ(r["criteria"].size(), 1u);               // no speedup criterion at equal time
  const std::string md = paired_markdown(r);
  EXPECT_NE(md.find("## Paired seeds (3 pairs, equal time)"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1 | 2.0000 | 2.0100 | -0.1380 |"), std::string::npos) << md;
}

// Runs with needles: per distance bucket the mean exact-match difference over the pairs, and
// the criterion on the worst bucket (within 2 points of dense).
TEST(Paired, RetrievalByBucketJudgesTheWorstBucket) {
  const auto retrieval = [](double near, double far) {
    return nlohmann::json{{"full", {{"buckets", {{{"range", "<1K"}, {"exact_match", near}},
                                                 {{"range", "1K-4K"}, {"exact_match", far}}}}}}};
  };
  std::vector<nlohmann::json> pairs;
  for (const double far : {0.90, 0.86}) {
    nlohmann::json p = {{"final_loss", {{"dense", 2.0}, {"lighthouse", 2.0}}},
                        {"loss_delta", 0.0},
                        {"wall_clock_s", {{"dense", 3.0}, {"lighthouse", 2.0}}},
                        {"speedup", 1.5},
                        {"tokens", {{"dense", 1}, {"lighthouse", 1}}},
                        {"recovery_steps", 1}};
    p["retrieval"] = {{"dense", retrieval(0.99, 0.95)}, {"lighthouse", retrieval(0.99, far)}};
    pairs.push_back(p);
  }
  auto r = paired_report(pairs, {0, 1}, Budget::Tokens, 0.02);
  ASSERT_EQ(r["retrieval"]["buckets"].size(), 2u);
  EXPECT_NEAR(r["retrieval"]["buckets"][1]["delta_mean"].get<double>(), -0.07, 1e-12);
  EXPECT_NEAR(r["retrieval"]["worst_delta"].get<double>(), -0.07, 1e-12);
  EXPECT_FALSE(r["criteria"].back()["pass"].get<bool>());  // -0.07 < -0.02
  pairs[0]["retrieval"]["lighthouse"] = retrieval(0.99, 0.96);
  pairs[1]["retrieval"]["lighthouse"] = retrieval(0.985, 0.95);
  r = paired_report(pairs, {0, 1}, Budget::Tokens, 0.02);
  EXPECT_TRUE(r["criteria"].back()["pass"].get<bool>());  // worst: -0.0025 at <1K
  EXPECT_NE(paired_markdown(r).find("| 1K-4K | 0.950 | 0.955 | +0.005 |"), std::string::npos)
      << paired_markdown(r);
}

// Time to dense quality: the first dense-mode validation of the Lighthouse->dense run at or
// below the dense run's last one, at its cumulative step time.
TEST(Paired, TimeToDenseQualityFollowsItsDefinition) {
  RunLog dense = log_of(losses({{50, 2.0}}), "dense", -1);  // 1 s per step: 50 s
  dense.vals = {{25, 0, 2.3, "dense"}, {50, 0, 2.0, "dense"}};
  RunLog lh = log_of(losses({{50, 2.0}}), "lh", 20);  // 0.25 s per step through step 20
  lh.vals = {{10, 0, 1.9, "lighthouse"}, {20, 0, 2.1, "dense"}, {30, 0, 2.0, "dense"},
             {40, 0, 1.9, "dense"}};
  const auto q = time_to_dense_quality(dense, lh);
  EXPECT_TRUE(q["reached"].get<bool>());
  EXPECT_EQ(q["step"], 30);                            // 2.0 <= 2.0; the Lighthouse-mode 1.9 is no quality
  EXPECT_DOUBLE_EQ(q["time_s"].get<double>(), 15.0);  // 20 x 0.25 + 10 x 1
  EXPECT_DOUBLE_EQ(q["speedup"].get<double>(), 50.0 / 15.0);
  lh.vals = {{20, 0, 2.1, "dense"}};
  EXPECT_FALSE(time_to_dense_quality(dense, lh)["reached"].get<bool>());
  EXPECT_NE(report_markdown(compare_report(dense, lh, eval_of(1.5, 0.1), eval_of(1.6, 0.1)))
                .find("time to dense quality: not reached"),
            std::string::npos);
}

// --budget time sizes the run so that its steps fit the dense run's wall clock, the stage
// split kept as a fraction.
TEST(Paired, StretchedStepsFitTheBudget) {
  const auto [n, n1] = stretched_steps(600, 450, 202.0, 0.3367, 0.24);
  EXPECT_EQ(n, static_cast<int64_t>(202.0 / (0.75 * 0.24 + 0.25 * 0.3367)));
  EXPECT_EQ(n1, std::llround(0.75 * n));
  EXPECT_LE(n1 * 0.24 + (n - n1) * 0.3367, 202.0 + 0.3367);
  EXPECT_THROW(stretched_steps(600, 450, 0.0, 0.3, 0.2), std::runtime_error);
}

// Two seeds at equal time on the tiny config: one pair per seed in out/seed-<S>/, the
// Lighthouse->dense run stops at the dense run's wall clock, and reuse with {seed} trains
// nothing.
TEST(Compare, SeedsAtEqualTimeWritePairsAndAnInterval) {
  const std::string dir = scratch_dir("compare-seeds");
  train::testing::write_file(dir + "/t.toml", train::testing::kTestToml);
  const std::vector<std::string> common = {
      "--config", dir + "/t.toml", "--set", "data.builtin_docs=60", "--niah-contexts", "256",
      "--niah-depths", "0", "--trials", "1", "--device", "cpu", "--seeds", "3,4"};
  std::vector<std::string> args = {"compare", "--out", dir + "/out", "--budget", "time"};
  args.insert(args.end(), common.begin(), common.end());
  auto r = run_cli(dir, args);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const auto j = nlohmann::json::parse(read_file(dir + "/out/report.json"));
  EXPECT_EQ(j["budget"], "time");
  ASSERT_EQ(j["pairs"].size(), 2u);
  EXPECT_EQ(j["loss_delta"]["n"], 2);
  EXPECT_TRUE(j["loss_delta"]["ci95"].is_array());
  EXPECT_TRUE(j["criteria"][0]["pass"].is_boolean());
  EXPECT_EQ(j["loss_delta"]["margin"], 0.0);
  for (const int seed : {3, 4}) {
    const std::string pair = dir + "/out/seed-" + std::to_string(seed);
    const RunLog dense = read_run_log(pair + "/dense"), lh = read_run_log(pair + "/lighthouse");
    double longest = 0;
    for (const auto& st : lh.steps) longest = std::max(longest, st.step_time_s);
    EXPECT_LE(lh.wall_clock_s(), dense.wall_clock_s() + longest) << seed;  // stopped in time
    EXPECT_NE(read_file(pair + "/lighthouse/config.toml").find("seed = " + std::to_string(seed)),
              std::string::npos);
    EXPECT_NE(read_file(pair + "/lighthouse/config.toml").find("deterministic = true"),
              std::string::npos);  // compare's default
    EXPECT_TRUE(std::filesystem::exists(pair + "/eval-lighthouse.json"));
  }
  EXPECT_NE(j["pairs"][0]["final_loss"], j["pairs"][1]["final_loss"]);  // two seeds differ
  const std::string md = read_file(dir + "/out/report.md");
  EXPECT_NE(md.find("## Paired seeds (2 pairs, equal time)"), std::string::npos);
  EXPECT_NE(md.find("# Seed 4"), std::string::npos);

  args = {"compare", "--out", dir + "/again", "--budget", "time", "--dense-run",
          dir + "/out/seed-{seed}/dense", "--lighthouse-run", dir + "/out/seed-{seed}/lighthouse"};
  args.insert(args.end(), common.begin(), common.end());
  r = run_cli(dir, args);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const auto k = nlohmann::json::parse(read_file(dir + "/again/report.json"));
  EXPECT_EQ(k["loss_delta"], j["loss_delta"]);
  EXPECT_FALSE(std::filesystem::exists(dir + "/again/seed-3/dense"));  // nothing trained

  args = {"compare", "--out", dir + "/bad", "--dense-run",
          dir + "/out/seed-3/dense," + dir + "/out/seed-4/dense"};
  args.insert(args.end(), common.begin(), common.end());
  args.back() = "3,4,5";
  r = run_cli(dir, args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--dense-run: 2 runs for 3 seeds"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lighthouse::eval
