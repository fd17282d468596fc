// What the commands may write (docs/trust.md), through the binary: `lighthouse export` never
// follows a link in --out and leaves nothing when it fails (a --tokenizer folder without
// tokenizer files is an error naming --tokenizer); `lighthouse eval` of an export writes no
// token cache where the export's metadata (data.cache, run.dir) points.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using testing::read_file;
using testing::run_cli;
using testing::scratch_dir;
using testing::write_file;

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

bool is_link(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// A 2-step test run in dir/run with extra --set overrides.
void train_run(const std::string& dir, const std::vector<std::string>& extra = {}) {
  write_file(dir + "/t.toml", testing::kTestToml);
  std::vector<std::string> args = {"train", "--config", dir + "/t.toml", "--set",
                                   "run.dir=" + dir + "/run", "--set", "train.steps=2",
                                   "--set", "train.stage1_steps=1", "--set",
                                   "schedule.warmup_steps=1", "--set", "val.every=0"};
  for (const auto& e : extra) args.insert(args.end(), {"--set", e});
  const auto r = run_cli(dir, args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

TEST(OutputSafety, ExportNeverFollowsLinksAndLeavesNothingPartial) {
  const std::string dir = scratch_dir("export");
  train_run(dir);
  // A link named config.json in an existing --out is replaced, its target left alone.
  ::mkdir((dir + "/hf").c_str(), 0755);
  write_file(dir + "/victim.txt", "keep");
  ASSERT_EQ(::symlink((dir + "/victim.txt").c_str(), (dir + "/hf/config.json").c_str()), 0);
  auto r = run_cli(dir, {"export", "--run", dir + "/run", "--out", dir + "/hf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir + "/victim.txt"), "keep");
  EXPECT_FALSE(is_link(dir + "/hf/config.json"));
  EXPECT_NE(read_file(dir + "/hf/config.json").find("LlamaForCausalLM"), std::string::npos);

  // --out itself a (dangling) link: refused, nothing created at its target.
  ASSERT_EQ(::symlink((dir + "/elsewhere").c_str(), (dir + "/dangling").c_str()), 0);
  r = run_cli(dir, {"export", "--run", dir + "/run", "--out", dir + "/dangling"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--out: " + dir + "/dangling: is a symbolic link"), std::string::npos)
      << r.err;
  EXPECT_FALSE(exists(dir + "/elsewhere"));

  // A --tokenizer folder without tokenizer files: named, and no partial export is left.
  ::mkdir((dir + "/notok").c_str(), 0755);
  r = run_cli(dir, {"export", "--run", dir + "/run", "--out", dir + "/new/hf2", "--tokenizer",
                    dir + "/notok"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--tokenizer: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("holds no tokenizer.json"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(dir + "/new/hf2"));
  EXPECT_EQ(r.err.find("--out"), std::string::npos) << r.err;
  EXPECT_EQ(::rmdir((dir + "/new").c_str()), 0) << "new/ holds a leftover staging folder";
}

TEST(OutputSafety, EvalOfAnExportWritesNoCacheWhereItsMetadataPoints) {
  const std::string dir = scratch_dir("eval");
  std::string text;
  for (int i = 0; i < 400; ++i) text += "line " + std::to_string(i * 7919 % 1000) + " of a text. ";
  write_file(dir + "/corpus.txt", text);
  train_run(dir, {"data.source=" + dir + "/corpus.txt", "data.cache=run"});
  ASSERT_TRUE(exists(dir + "/run/tokens/manifest.json"));
  auto r = run_cli(dir, {"export", "--run", dir + "/run", "--out", dir + "/hf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::remove_tree(dir + "/run");
  r = run_cli(dir, {"eval", "--model", dir + "/hf", "--ppl", "--device", "cpu"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ppl dense:"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(dir + "/run")) << "eval recreated the run folder the metadata names";
}

}  // namespace
}  // namespace lighthouse::train
