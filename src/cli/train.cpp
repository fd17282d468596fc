// `lighthouse train [--config FILE] [--set key=value ...] [--<key> value ...]`: resolves the run
// config (the tiny config and the built-in corpus by default), opens or resumes the session and
// runs the training loop with log lines on stdout and a progress line on stderr (terminals only).
#include <unistd.h>

#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/progress.h"
#include "train/trainer.h"

namespace lighthouse::cli {
namespace {

struct TrainArgs {
  std::string config;
  std::vector<std::string> sets;             // key=value, in order
  std::map<std::string, std::string> flags;  // --<key> value
};

// Overrides in application order: --<key> flags, then --set assignments as given.
std::vector<std::pair<std::string, std::string>> overrides(const TrainArgs& a) {
  std::vector<std::pair<std::string, std::string>> out(a.flags.begin(), a.flags.end());
  for (const auto& s : a.sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0)
      throw train::ConfigError("--set: expected key=value, got \"" + s + "\"");
    out.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  return out;
}

int run_train(const TrainArgs& a) {
  auto session = train::open_session({a.config, overrides(a)});
  const bool draw = session->cfg.log.progress && isatty(STDERR_FILENO);
  std::optional<Progress> progress;
  train::ConsoleHooks hooks;
  hooks.line = [&](const std::string& text) {
    if (progress) std::fprintf(stderr, "\r\033[K");
    std::cout << text << std::endl;
  };
  if (draw)
    hooks.progress = [&](int64_t done, int64_t total, const std::string& extra) {
      if (!progress) progress.emplace("train", total, "tok");
      progress->update(done, extra);
    };
  train::train(*session, hooks);
  return 0;
}

}  // namespace

void add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* sub = app.add_subcommand(
      "train",
      "Pre-train a model; with no arguments: the built-in tiny config on the built-in corpus");
  sub->add_option("--config", a->config,
                  "TOML run config over the defaults (the tiny config, configs/tiny.toml)")
      ->check(CLI::ExistingFile);
  sub->add_option("--set", a->sets, "override a config key, e.g. --set optim.lr=1e-3 (repeatable)")
      ->type_name("KEY=VALUE");
  for (const auto& k : train::all_keys())
    sub->add_option_function<std::string>(
           "--" + k.key, [a, key = k.key](const std::string& v) { a->flags[key] = v; }, k.help)
        ->group("Config keys (same as --set KEY=VALUE)");
  sub->callback([a] {
    const int rc = run_train(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace lighthouse::cli
