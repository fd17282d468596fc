// Resolving a launch into its run config (launch.h).
#include "train/launch.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "train/run_config.h"
#include "train/checkpoint.h"
#include "train/needles.h"

namespace lighthouse::train {
namespace fs = std::filesystem;
namespace {

std::string run_dir_of(const std::string& ckpt) {
  const fs::path dir = fs::path(ckpt).parent_path();
  return (dir.filename() == "checkpoints" ? dir.parent_path() : dir).string();
}

// The config file over `base`, then the overrides.
RunConfig layered(const RunConfig& base, const Launch& launch) {
  return resolve_keys(base, launch.config_file, launch.overrides);
}

// model.init of a fresh run: the Hugging Face config's model keys replace the defaults under
// the config file and the overrides (which may change RoPE, not the weights' shapes).
// model.dense_layers is not part of a Hugging Face config: the config's own value stays (the
// tiny config's without --config); a config file that leaves it out gets the imported depth's
// default.
std::optional<model::ExportedModel> apply_model_init(RunConfig& cfg, const Launch& launch) {
  if (cfg.model.init.empty() || !cfg.run.resume.empty()) return std::nullopt;
  std::optional<model::ExportedModel> hf;
  try {
    hf = model::read_hf_export(cfg.model.init, "model.init");
  } catch (const c10::Error& e) {
    throw ConfigError(e.what_without_backtrace());
  }
  RunConfig base;
  apply_model_config(base, hf->config);
  if (!launch.config_file.empty()) base.model.dense_layers = std::nullopt;
  cfg = layered(base, launch);
  check_model_shapes(cfg, hf->config, "model.init " + cfg.model.init + "/config.json");
  return hf;
}

}  // namespace

void resolve_vocab(RunConfig& cfg, const Dataset& data, const std::string& checkpoint) {
  int64_t& v = cfg.model.vocab;
  const int64_t needles = needle_id_count(cfg.data.needles);  // reserved past the data's ids
  if (v == 0) v = data.vocab_size + needles;
  if (v >= data.vocab_size + needles) return;
  const std::string whose = !checkpoint.empty() ? "the checkpoint " + checkpoint
                            : !cfg.model.init.empty() ? "model.init " + cfg.model.init
                                                      : "model.vocab_size";
  throw ConfigError("model.vocab_size: " + whose + " has vocab_size " + std::to_string(v) +
                    ", below data.source " + cfg.data.source + "'s vocab_size " +
                    std::to_string(data.vocab_size) +
                    (needles > 0 ? " plus the " + std::to_string(needles) +
                                       " ids data.needles reserves"
                                 : std::string()));
}

void load_init_weights(model::Llama& m, const model::ExportedModel& hf, const std::string& dir) {
  try {
    load_hf_weights(m, hf, dir);
  } catch (const c10::Error& e) {
    throw ConfigError(e.what_without_backtrace());
  }
}


Resolved resolve(const Launch& launch, const dist::LaunchEnv& env) {
  RunConfig cfg = layered(RunConfig{}, launch);  // no --config: the tiny defaults
  bool dir_given = false;
  for (const auto& [k, v] : launch.overrides) dir_given |= k == "run.dir";
  std::optional<model::ExportedModel> init = apply_model_init(cfg, launch);

  std::optional<CheckpointContents> ck;
  std::string ck_path;
  if (!cfg.run.resume.empty()) {
    if (!launch.config_file.empty())
      throw ConfigError(
          "--config: cannot be combined with run.resume (the checkpoint's config is "
          "used; change keys with --set)");
    std::pair<std::string, CheckpointContents> found;
    try {
      found = read_newest_checkpoint(cfg.run.resume);
    } catch (const CheckpointError& e) {
      throw ConfigError(std::string("run.resume: ") + e.what());
    }
    ck_path = found.first;
    ck = std::move(found.second);
    RunConfig saved;
    apply_json(saved, ck->meta.at("config"), ck_path);
    RunConfig now = saved;
    now.train.stop_at = 0;  // per invocation, like run.resume itself
    now = resolve_keys(now, "", launch.overrides);
    if (!dir_given) now.run.dir = run_dir_of(ck_path);
    check_resume_compatible(saved, now);
    validate(now);
    // The launcher of a local multi-process run has no RANK / WORLD_SIZE yet.
    const int64_t world = env.present ? env.world : std::max<int64_t>(1, now.dist.world_size);
    check_resume_global_batch(saved, ck->meta.value("world_size", int64_t{1}), now, world);
    cfg = now;
  }
  validate(cfg);
  // dp x cp against the world about to run (a local launcher's before it starts the ranks).
  resolve_dp(cfg, env.present ? env.world : std::max<int64_t>(1, cfg.dist.world_size));
  return {cfg, std::move(ck), ck_path, std::move(init)};
}

RunConfig resolve_config(const Launch& launch) {
  return resolve(launch, dist::launch_env()).cfg;
}

}  // namespace lighthouse::train
