// The command-line contract through the `lighthouse` binary: parse errors exit 1 with one line
// "lighthouse: error: ..." and a "did you mean"; integer flags name the expected value; every
// output file fails loudly naming its flag and path; progress in a redirected stderr is plain
// lines; CUDA-sweep flags are refused on the CPU; --version describes the build.
#include <gtest/gtest.h>
#include <torch/version.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using testing::CliResult;
using testing::run_cli;
using testing::scratch_dir;

// A small CPU op benchmark (seconds).
const std::vector<std::string> kSmallBench = {
    "bench", "--seq-len", "256", "--levels", "2", "--topk",    "16", "--tile-topk", "8", "--heads",
    "1",     "--dim",     "8",   "--warmup", "0", "--repeats", "1"};

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string shown(const std::vector<std::string>& args) {
  std::string s = "lighthouse";
  for (const auto& a : args) s += " " + a;
  return s;
}

bool has_control(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 && c != '\n'; });
}

// Exit code 1, exactly one line on stderr in the error format, containing every `names`.
void expect_one_line_error(const CliResult& r, const std::vector<std::string>& args,
                           const std::vector<std::string>& names) {
  EXPECT_EQ(r.exit_code, 1) << shown(args) << "\n" << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << shown(args) << "\n" << r.err;
  EXPECT_EQ(r.err.rfind("lighthouse: error: ", 0), 0u) << shown(args) << "\n" << r.err;
  for (const auto& n : names)
    EXPECT_NE(r.err.find(n), std::string::npos) << shown(args) << "\n" << r.err;
  EXPECT_LT(r.err.size(), 400u) << shown(args) << "\n" << r.err;
}

TEST(CliContract, ParseErrorsAreOneLineWithExitCode1AndSuggestions) {
  const std::string dir = scratch_dir("parse");
  const std::string run = "--set=run.dir=" + dir + "/run";
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
      {{"train", "--optim.lrr", "1e-3", run},
       {"--optim.lrr: unknown flag", "did you mean --optim.lr?"}},
      {{"train", "--optim.lrr=1e-3", run}, {"--optim.lrr", "did you mean --optim.lr?"}},
      {{"trian"}, {"unknown command \"trian\"", "did you mean train?"}},
      {{"bench", "trian"},
       {"unknown command \"trian\" for lighthouse bench", "did you mean train?"}},
      {{}, {"a command is required", "train", "bench", "export"}},
      {{"train", "--config", dir + "/missing.toml", run}, {"--config", "missing.toml"}},
      {{"bench", "train", "--stepz", "3"}, {"--stepz: unknown flag", "did you mean --steps?"}},
      {{"train", "--set", " optim.lrr = 1e-3", run},
       {"optim.lrr: unknown key", "did you mean optim.lr?"}},
      {{"export", "--out"}, {"--out"}},
  };
  for (const auto& [args, names] : cases) expect_one_line_error(run_cli(dir, args), args, names);
  EXPECT_FALSE(std::filesystem::exists(dir + "/run"));
}

TEST(CliContract, SetAssignmentsAreTrimmed) {
  const std::string dir = scratch_dir("trim");
  // The key is found (the range check runs), so the spaces were trimmed.
  const std::vector<std::string> args = {"train", "--set", "optim.lr = 5.0", "--set",
                                         "run.dir = " + dir + "/run"};
  expect_one_line_error(run_cli(dir, args), args, {"optim.lr: must be in (0, 1), got 5"});
}

TEST(CliContract, IntegerFlagsNameTheFlagAndTheExpectedValue) {
  const std::string dir = scratch_dir("ints");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"bench", "train", "--steps", "0"}, "--steps: expected a positive integer, got \"0\""},
      {{"bench", "train", "--warmup", "-1"}, "--warmup: expected an integer >= 0, got \"-1\""},
      {{"bench", "--batch", "0"}, "--batch: expected a positive integer, got \"0\""},
      {{"bench", "--seq-len", "abc"}, "--seq-len: expected a positive integer, got \"abc\""},
      {{"bench", "-n", "1.5"}, "--seq-len: expected a positive integer, got \"1.5\""},
      {{"bench", "--repeats", "99999999999999999999"}, "--repeats: expected a positive integer"},
      {{"bench", "--case-budget", "0", "--device", "cuda"},
       "--case-budget: expected a positive number"},
  };
  for (const auto& [args, name] : cases) {
    const auto r = run_cli(dir, args);
    expect_one_line_error(r, args, {name});
    EXPECT_EQ(r.err.find("1797"), std::string::npos) << r.err;
  }
}

TEST(CliContract, OutputFilesThatCannotBeWrittenFailNamingFlagAndPath) {
  const std::string dir = scratch_dir("out");
  testing::write_file(dir + "/t.toml", testing::kTestToml);
  const std::string missing = dir + "/no/such/dir/r.json";
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
      {plus(kSmallBench, {"--json", missing}), {"--json", missing}},
      {plus(kSmallBench, {"--json", dir}), {"--json", dir, "is a directory"}},
      {{"bench", "train", "--config", dir + "/t.toml", "--steps", "1", "--warmup", "0", "--json",
        missing},
       {"--json", missing}},
      {{"bench", "--device", "cuda", "--markdown", dir + "/no/r.md"},
       {"--markdown", dir + "/no/r.md"}},
      {{"train", "--config", dir + "/t.toml", "--set", "run.dir=/dev/null/run"},
       {"run.dir: cannot create /dev/null/run"}},
  };
  for (const auto& [args, names] : cases) expect_one_line_error(run_cli(dir, args), args, names);
  // Writable by its name, failing on write: the results are computed, then the error.
  const auto r = run_cli(dir, plus(kSmallBench, {"--json", "/dev/full"}));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("\nlighthouse: error: --json: writing /dev/full failed"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.back(), '\n');
  EXPECT_EQ(r.err.find("lighthouse: error:"), r.err.rfind("lighthouse: error:")) << r.err;
}

TEST(CliContract, ExportOutNamingAnExistingFileIsReportedAsOut) {
  const std::string dir = scratch_dir("export");
  testing::write_file(dir + "/t.toml", testing::kTestToml);
  auto r = run_cli(dir, {"train", "--config", dir + "/t.toml", "--set", "run.dir=" + dir + "/run",
                         "--set", "train.steps=1", "--set", "train.stage1_steps=1", "--set",
                         "schedule.warmup_steps=1", "--set", "val.every=0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::write_file(dir + "/file", "x");
  const std::vector<std::string> args = {"export", "--run", dir + "/run", "--out", dir + "/file"};
  expect_one_line_error(run_cli(dir, args), args, {"--out: " + dir + "/file", "existing file"});
}

TEST(CliContract, CudaSweepFlagsAreRefusedOnTheCpu) {
  const std::string dir = scratch_dir("cudaflags");
  for (const auto& extra : std::vector<std::vector<std::string>>{{"--seq-lens", "256,512"},
                                                                 {"--markdown", dir + "/r.md"},
                                                                 {"--topks", "16"},
                                                                 {"--verify-max-n", "0"}}) {
    const auto args = plus(kSmallBench, extra);
    expect_one_line_error(run_cli(dir, args), args, {extra[0] + ": only the CUDA sweep"});
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/r.md"));
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// `bench` resolves the same dotted lighthouse.* keys as `train` (one resolver); its old flags
// (--levels, --topk, ...) are aliases of them; keys it does not read are errors naming them.
TEST(CliContract, BenchTakesTheDottedLighthouseKeys) {
  const std::string dir = scratch_dir("bench-keys");
  auto r = run_cli(dir, plus(kSmallBench, {"--json", dir + "/old.json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> dotted = {
      "bench", "--seq-len", "256", "--set", "lighthouse.levels=2", "--set", "lighthouse.topk = 16",
      "--set", "lighthouse.tile_topk=8", "--heads", "1", "--dim", "8", "--warmup", "0",
      "--repeats", "1", "--json", dir + "/new.json"};
  r = run_cli(dir, dotted);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto old_geometry = read_json(dir + "/old.json")["geometry"];
  const auto new_geometry = read_json(dir + "/new.json")["geometry"];
  EXPECT_EQ(new_geometry, old_geometry);
  EXPECT_EQ(new_geometry["L"], 2);
  EXPECT_EQ(new_geometry["k"], 16);
  EXPECT_EQ(new_geometry["m"], 8);
  // --set comes after the aliases: it wins.
  r = run_cli(dir, plus(kSmallBench, {"--set", "lighthouse.topk=32", "--json", dir + "/w.json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_json(dir + "/w.json")["geometry"]["k"], 32);

  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> bad = {
      {{"--set", "train.steps=3"}, {"train.steps: bench reads only lighthouse.levels"}},
      {{"--set", "lighthouse.combine=sum"}, {"lighthouse.combine: bench reads only"}},
      {{"--set", "lighthouse.backend=flash"}, {"lighthouse.backend: bench reads only"}},
      {{"--set", "lighthouse.topkk=16"},
       {"lighthouse.topkk: unknown key", "did you mean lighthouse.topk?"}},
      {{"--set", "lighthouse.topk=12"}, {"lighthouse.topk: topk (k) must be a positive multiple"}},
      {{"--set", "lighthouse.scorer=strided"}, {"lighthouse.scorer: scorer must be"}},
  };
  for (const auto& [extra, names] : bad) {
    const auto args = plus(kSmallBench, extra);
    expect_one_line_error(run_cli(dir, args), args, names);
  }
  const std::vector<std::string> leak = {"bench", "leak", "--set", "dist.cp=2"};
  expect_one_line_error(run_cli(dir, leak), leak, {"dist.cp: bench leak reads only"});
}

TEST(CliContract, ProgressInARedirectedStderrIsPlainLines) {
  const std::string dir = scratch_dir("progress");
  testing::write_file(dir + "/t.toml", testing::kTestToml);
  auto r = run_cli(dir, plus(kSmallBench, {"--json", dir + "/b.json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(has_control(r.err)) << r.err;
  EXPECT_NE(r.err.find("[bench] 4/4 runs"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("runs/s"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir + "/b.json"));
  r = run_cli(dir,
              {"bench", "train", "--config", dir + "/t.toml", "--steps", "1", "--warmup", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(has_control(r.err)) << r.err;
  EXPECT_NE(r.err.find("[bench train] 2/2 steps"), std::string::npos) << r.err;
  r = run_cli(dir, {"train", "--config", dir + "/t.toml", "--set", "run.dir=" + dir + "/run",
                    "--set", "log.progress=true", "--set", "train.steps=2", "--set",
                    "train.stage1_steps=1", "--set", "schedule.warmup_steps=1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(has_control(r.err + r.out)) << r.err;
  EXPECT_NE(r.err.find("[train] 1.02k/1.02k tok"), std::string::npos) << r.err;
}

TEST(CliContract, VersionDescribesTheBuild) {
  const std::string dir = scratch_dir("version");
  const auto r = run_cli(dir, {"--version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(std::string("lighthouse ") + LIGHTHOUSE_VERSION + "\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(std::string("git commit: ") + LIGHTHOUSE_GIT_COMMIT + "\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(std::string("torch: ") + TORCH_VERSION + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CUDA: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("SDPA backends: cpu: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("math"), std::string::npos) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

}  // namespace
}  // namespace lighthouse::train
