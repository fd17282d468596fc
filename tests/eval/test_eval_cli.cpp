// `lighthouse eval` through the binary: on an exported model it reports exactly what it
// reports on the run's checkpoint; --modes adds the Lighthouse-mode loss; the heatmap is an
// image; bad flags exit non-zero with a line naming the flag.
#include <gtest/gtest.h>

#include "train/helpers.h"

namespace lighthouse::eval {
namespace {

using train::testing::read_file;
using train::testing::run_cli;
using train::testing::scratch_dir;

// A trained test run (8 steps: Lighthouse for 5, then dense) in dir/run.
void train_run(const std::string& dir) {
  train::testing::write_file(dir + "/t.toml", train::testing::kTestToml);
  const auto r = run_cli(dir, {"train", "--config", dir + "/t.toml", "--set",
                               "run.dir=" + dir + "/run", "--set", "data.builtin_docs=60"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

nlohmann::json eval_json(const std::string& dir, std::vector<std::string> args,
                         const std::string& name) {
  args.insert(args.begin(), "eval");
  for (const char* a : {"--ppl", "--niah", "--niah-contexts", "256,512", "--niah-depths",
                        "0,50,100", "--trials", "3", "--device", "cpu"})
    args.push_back(a);
  args.push_back("--json");
  args.push_back(dir + "/" + name);
  const auto r = run_cli(dir, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ppl dense:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("niah (dense mode"), std::string::npos) << r.out;
  return nlohmann::json::parse(read_file(dir + "/" + name));
}

TEST(EvalCli, ExportedModelEvaluatesExactlyLikeTheCheckpoint) {
  const std::string dir = scratch_dir("eval");
  train_run(dir);
  auto r = run_cli(dir, {"export", "--run", dir + "/run", "--out", dir + "/hf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto a = eval_json(dir, {"--run", dir + "/run"}, "run.json");
  const auto b = eval_json(dir, {"--model", dir + "/hf"}, "hf.json");
  ASSERT_TRUE(a.contains("ppl") && b.contains("ppl"));
  EXPECT_EQ(a["ppl"]["dense"]["tokens"], b["ppl"]["dense"]["tokens"]);
  EXPECT_GT(a["ppl"]["dense"]["tokens"].get<int64_t>(), 0);
  EXPECT_EQ(a["ppl"]["dense"]["loss"].get<double>(), b["ppl"]["dense"]["loss"].get<double>());
  const double loss = a["ppl"]["dense"]["loss"].get<double>();
  EXPECT_GT(loss, 0.5);
  EXPECT_LT(loss, std::log(259.0));  // learned something
  EXPECT_DOUBLE_EQ(a["ppl"]["dense"]["ppl"].get<double>(), std::exp(loss));
  EXPECT_EQ(a["niah"]["cells"], b["niah"]["cells"]);
  EXPECT_EQ(a["niah"]["cells"].size(), 6u);
  EXPECT_EQ(a["niah"]["cells"][0]["trials"], 3);
  EXPECT_EQ(b["model"]["step"], 8);
  EXPECT_EQ(b["model"]["trained_context"], 256);
}

TEST(EvalCli, ModesHeatmapAndBadFlags) {
  const std::string dir = scratch_dir("modes");
  train_run(dir);
  auto r = run_cli(dir, {"eval", "--run", dir + "/run", "--ppl", "--modes", "lighthouse,dense",
                         "--max-tokens", "512", "--niah", "--niah-depths", "0,100", "--trials", "2",
                         "--json", dir + "/m.json", "--heatmap", dir + "/niah.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The dense line comes first; the Lighthouse-mode one is marked as no quality measure.
  EXPECT_LT(r.out.find("ppl dense:"), r.out.find("ppl lighthouse:")) << r.out;
  EXPECT_NE(r.out.find("not a quality measure"), std::string::npos);
  EXPECT_NE(r.out.find("skipping contexts beyond the trained context 256"), std::string::npos);
  const auto j = nlohmann::json::parse(read_file(dir + "/m.json"));
  EXPECT_EQ(j["ppl"]["dense"]["tokens"], 512);
  EXPECT_EQ(j["ppl"]["lighthouse"]["tokens"], 512);
  EXPECT_NE(j["ppl"]["dense"]["loss"], j["ppl"]["lighthouse"]["loss"]);
  // Default contexts are all beyond 256, so the trained context's quarters are used... and
  // 64 is below the prompt's minimum, so 128 and 256 remain.
  EXPECT_EQ(j["niah"]["cells"].size(), 4u);
  const std::string png = read_file(dir + "/niah.png");
  EXPECT_EQ(png.compare(0, 8, "\x89PNG\r\n\x1a\n"), 0);
  EXPECT_GT(png.size(), 5000u);

  // --set lighthouse.* changes the Lighthouse-mode evaluation only (same weights).
  r = run_cli(dir, {"eval", "--run", dir + "/run", "--ppl", "--modes", "lighthouse,dense",
                    "--max-tokens", "512", "--set", "lighthouse.topk=8", "--json", dir + "/k8.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto k8 = nlohmann::json::parse(read_file(dir + "/k8.json"));
  EXPECT_EQ(k8["ppl"]["dense"]["loss"], j["ppl"]["dense"]["loss"]);
  EXPECT_NE(k8["ppl"]["lighthouse"]["loss"], j["ppl"]["lighthouse"]["loss"]);

  struct Bad {
    std::vector<std::string> args;
    std::string names;
  };
  const std::string run = dir + "/run";
  for (const Bad& b : std::vector<Bad>{
           {{"eval", "--run", run}, "give --ppl, --retrieval, --niah or several"},
           {{"eval", "--ppl"}, "one of --run, --checkpoint or --model"},
           {{"eval", "--run", run, "--ppl", "--modes", "sparse"}, "--modes"},
           {{"eval", "--run", run, "--niah", "--niah-contexts", "16"}, "--niah-contexts: 16"},
           {{"eval", "--run", run, "--niah", "--niah-depths", "0,120"}, "--niah-depths"},
           {{"eval", "--run", run, "--niah", "--trials", "0"}, "--trials"},
           {{"eval", "--run", run, "--ppl", "--device", "tpu"}, "--device"},
           {{"eval", "--run", run, "--ppl", "--data", dir + "/missing.txt"}, "--data"},
           {{"eval", "--run", run, "--ppl", "--json", dir + "/no/such/dir/x.json"}, "--json"},
           {{"eval", "--run", run, "--niah", "--heatmap", dir + "/x.gif"}, ".png or .svg"},
           {{"eval", "--model", dir, "--ppl"}, "--model"},
           {{"eval", "--run", run, "--ppl", "--set", "model.d_model=64"},
            "model.d_model: eval changes only lighthouse.* keys"},
           {{"eval", "--run", run, "--ppl", "--set", "lighthouse.topk=12"}, "lighthouse.topk"}}) {
    r = run_cli(dir, b.args);
    EXPECT_NE(r.exit_code, 0) << b.names;
    EXPECT_NE(r.err.find(b.names), std::string::npos) << b.names << ": " << r.err;
  }
}

}  // namespace
}  // namespace lighthouse::eval
