// `lighthouse train [--config FILE] [--set key=value ...] [--<key> value ...]`: resolves the run
// config (the tiny config and the built-in corpus by default), opens or resumes the session and
// runs the training loop with log lines on stdout and progress on stderr (cli/progress.h).
// Exit code: 0, or 128 + the signal number when SIGINT / SIGTERM stopped the run. With
// dist.world_size = N > 1 and no torchrun environment, it launches N local ranks of itself
// (dist/launch.h) and returns the launch's exit code.
#include <iostream>
#include <memory>
#include <optional>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "dist/group.h"
#include "dist/launch.h"
#include "train/trainer.h"

namespace lighthouse::cli {
namespace {

int run_train(const ConfigFlags& a) {
  std::optional<Progress> data_bar;  // one bar per data stage (verify, tokenize)
  std::string data_stage;
  const train::DataProgress data_progress = [&](const std::string& stage, int64_t done,
                                                int64_t total) {
    if (stage != data_stage) data_bar.emplace(stage, total, "B"), data_stage = stage;
    data_bar->update(done);
  };
  const train::Launch launch{a.file, overrides(a), data_progress};
  if (!dist::launch_env().present) {
    const auto world = train::resolve_config(launch).dist.world_size;
    if (world > 1) return dist::launch_local(static_cast<int>(world));
  }
  auto session = train::open_session(launch);
  std::optional<Progress> progress;
  train::ConsoleHooks hooks;
  hooks.line = [&](const std::string& text) {
    if (progress) progress->clear();
    std::cout << text << std::endl;
  };
  if (session->cfg.log.progress && session->rank() == 0)
    hooks.progress = [&](int64_t done, int64_t total, const std::string& extra) {
      if (!progress) progress.emplace("train", total, "tok");
      progress->update(done, extra);
    };
  const auto result = train::train(*session, hooks);
  return result.signal ? 128 + result.signal : 0;
}

}  // namespace

void add_train(CLI::App& app) {
  auto a = std::make_shared<ConfigFlags>();
  CLI::App* sub = app.add_subcommand(
      "train",
      "Pre-train a model; with no arguments: the built-in tiny config on the built-in corpus");
  add_config_flags(*sub, *a, "TOML run config over the defaults (the tiny config, configs/tiny.toml)",
                   "override a config key, e.g. --set optim.lr=1e-3 (repeatable)",
                   /*key_flags=*/true);
  sub->callback([a] {
    const int rc = run_train(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace lighthouse::cli
