// Shared helpers of the trainer tests: a small test run config (fast on one CPU thread, with
// Lighthouse valid at its context), scratch directories, running the `lighthouse` binary and
// reading the step losses back from metrics.jsonl.
#pragma once

#include <ftw.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "train/run_config.h"

namespace lighthouse::train::testing {

// 3 layers (layer 0 dense, layers 1-2 follow the mode); N = 256 with L = 2, p = 4, k = 16,
// m = 8: Nc = 64, T = 2 tiles of C = 32, S = 64 + 4 * 16 = 128.
inline const char* kTestToml = R"(
[run]
name = "test"
threads = 1
[model]
d_model = 32
n_layers = 3
n_heads = 2
n_kv_heads = 1
head_dim = 16
ffn_hidden = 64
dense_layers = [0]
[lighthouse]
levels = 2
pool = 4
topk = 16
tile_topk = 8
[train]
steps = 8
stage1_steps = 5
context = 256
batch_size = 2
[optim]
lr = 1e-2
[schedule]
warmup_steps = 2
[data]
builtin_docs = 40
builtin_doc_bytes = 400
val_fraction = 0.05
[val]
every = 4
batches = 1
[checkpoint]
every = 2
keep = 2
[log]
every = 1
progress = false
)";

inline RunConfig test_config() {
  RunConfig c;
  apply_toml(c, kTestToml, "test config");
  return c;
}

// rm -rf through nftw: std::filesystem::remove_all binds to the copy of std::filesystem that
// libtorch.so exports, which crashes on non-empty directories.
inline void remove_tree(const std::string& dir) {
  const auto remove_one = [](const char* path, const struct stat*, int, struct FTW*) {
    return ::remove(path);
  };
  ::nftw(dir.c_str(), remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

// Removes this process's scratch directories when the tests end (kept when the environment
// variable LIGHTHOUSE_KEEP_TEST_DIRS is set, for debugging).
class ScratchDirs : public ::testing::Environment {
 public:
  static std::vector<std::string>& list() {
    static std::vector<std::string> dirs;
    return dirs;
  }
  void TearDown() override {
    if (std::getenv("LIGHTHOUSE_KEEP_TEST_DIRS")) return;
    for (const auto& d : list()) remove_tree(d);
  }
};
inline ::testing::Environment* const kScratchDirs =
    ::testing::AddGlobalTestEnvironment(new ScratchDirs);

// A fresh, empty directory under the test temp dir.
inline std::string scratch_dir(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::filesystem::path p = std::filesystem::path(::testing::TempDir()) /
                                  ("lh_" + std::string(info->test_suite_name()) + "_" +
                                   info->name() + "_" + name + "_" + std::to_string(::getpid()));
  remove_tree(p.string());
  std::filesystem::create_directories(p);
  ScratchDirs::list().push_back(p.string());
  return p.string();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// (step, loss) of every "step" record of a metrics.jsonl (a line being written is skipped).
inline std::vector<std::pair<int64_t, double>> step_losses(const std::string& run_dir) {
  std::vector<std::pair<int64_t, double>> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j["type"] == "step")
      out.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
  }
  return out;
}

struct CliResult {
  int exit_code = -1;    // -1 when killed by a signal
  int signal = 0;        // the signal that killed it, 0 if it exited
  std::string out, err;  // stdout, stderr
};

// Starts the lighthouse binary with args and extra environment; returns its pid.
inline pid_t spawn_cli(const std::vector<std::string>& args, const std::string& out_path,
                       const std::string& err_path,
                       const std::map<std::string, std::string>& env = {}) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    if (!std::freopen(out_path.c_str(), "w", stdout) ||
        !std::freopen(err_path.c_str(), "w", stderr))
      ::_exit(127);
    std::vector<char*> argv{const_cast<char*>(LIGHTHOUSE_BIN)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(LIGHTHOUSE_BIN, argv.data());
    ::_exit(127);
  }
  return pid;
}

inline CliResult wait_cli(pid_t pid, const std::string& out_path, const std::string& err_path) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  CliResult r;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

inline CliResult run_cli(const std::string& dir, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {}) {
  const std::string out = dir + "/stdout.txt", err = dir + "/stderr.txt";
  return wait_cli(spawn_cli(args, out, err, env), out, err);
}

}  // namespace lighthouse::train::testing
