// `lighthouse compare`: on a tiny config it trains both runs and writes report.json with
// every field, report.md and valid plots; reusing the runs reproduces the report's numbers;
// the report's switch spike and recovery follow their definitions on hand-made logs.
#include <gtest/gtest.h>

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
  EXPECT_NE(r.out.find("compare (dense mode): final loss dense"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(read_file(dir + "/out/report.json"));
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
  EXPECT_EQ(j["command"].get<std::string>().rfind("lighthouse compare --config " + dir, 0), 0u);
  const std::string md = read_file(dir + "/out/report.md");
  EXPECT_NE(md.find("final loss (dense mode)"), std::string::npos);
  EXPECT_NE(md.find("## Success criteria"), std::string::npos);

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
  const auto k = nlohmann::json::parse(read_file(dir + "/again/report.json"));
  EXPECT_EQ(k["final_loss"], j["final_loss"]);
  EXPECT_EQ(k["niah_mean"], j["niah_mean"]);
  EXPECT_EQ(k["wall_clock_s"], j["wall_clock_s"]);
  EXPECT_FALSE(std::filesystem::exists(dir + "/again/dense"));  // nothing trained

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

}  // namespace
}  // namespace lighthouse::eval
