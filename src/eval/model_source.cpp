// Loading an evaluation model from a checkpoint or an export directory (model_source.h).
#include "eval/model_source.h"

#include <c10/util/Exception.h>

#include <fstream>

#include "model/export.h"
#include "train/checkpoint.h"
#include "train/device.h"
#include "train/trainer.h"

namespace lighthouse::eval {
namespace {

// The vocabulary of an export without lighthouse_vocabulary metadata: bytes when config.json
// has the byte tokenizer's vocab_size and EOS, else its ids (unknown when absent).
train::Vocabulary config_vocabulary(const std::string& dir, int64_t vocab) {
  std::ifstream in(dir + "/config.json");
  const auto j = in ? nlohmann::json::parse(in, nullptr, false) : nlohmann::json();
  const auto id = [&](const char* k) {
    return j.is_object() && j.contains(k) && j.at(k).is_number_integer() ? j.at(k).get<int64_t>()
                                                                          : int64_t{-1};
  };
  if (vocab == model::kVocab && id("eos_token_id") == model::kEos) return train::byte_vocabulary();
  train::Vocabulary v;
  v.bytes = false;
  v.vocab_size = vocab;
  v.eos_id = id("eos_token_id");
  v.bos_id = id("bos_token_id");
  v.pad_id = id("pad_token_id");
  return v;
}

}  // namespace

EvalModel load_checkpoint_model(const std::string& target, const std::string& flag) {
  train::TrainedModel tm;
  try {
    tm = train::load_trained_model(target);
  } catch (const train::CheckpointError& e) {
    throw std::runtime_error(flag + ": " + e.what());
  }
  EvalModel m;
  m.model = tm.model;
  m.cfg = tm.cfg;
  m.source = tm.path;
  m.step = tm.step;
  m.vocab = tm.vocab;
  return m;
}

EvalModel load_export_model(const std::string& dir) {
  model::ExportedModel ex;
  try {
    ex = model::read_hf_export(dir);
  } catch (const c10::Error& e) {
    throw std::runtime_error(e.what_without_backtrace());
  }
  EvalModel m;
  m.source = dir;
  model::ModelConfig mc = ex.config;
  const auto it = ex.metadata.find("lighthouse_run_config");
  if (it != ex.metadata.end()) {
    const auto j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object())
      throw std::runtime_error("--model: " + dir +
                               "/model.safetensors: lighthouse_run_config is not JSON");
    train::apply_json(m.cfg, j, dir + "/model.safetensors");
    mc = train::to_model_config(m.cfg);
    if (mc.d_model != ex.config.d_model || mc.n_layers != ex.config.n_layers ||
        mc.n_heads != ex.config.n_heads || mc.n_kv_heads != ex.config.n_kv_heads ||
        mc.head_dim != ex.config.head_dim || mc.ffn_hidden != ex.config.ffn_hidden)
      throw std::runtime_error("--model: " + dir +
                               ": config.json disagrees with the run config in the metadata");
    const auto st = ex.metadata.find("lighthouse_step");
    if (st != ex.metadata.end()) m.step = std::stoll(st->second);
  } else {
    // A Llama export without our metadata: dense evaluation on --data only.
    m.has_run_config = false;
    train::apply_model_config(m.cfg, mc);
    m.cfg.model.dense_layers = std::nullopt;  // the default
    mc = train::to_model_config(m.cfg);
  }
  const auto vit = ex.metadata.find("lighthouse_vocabulary");
  if (vit != ex.metadata.end()) {
    const auto j = nlohmann::json::parse(vit->second, nullptr, /*allow_exceptions=*/false);
    try {
      m.vocab = train::Vocabulary::from_json(j, dir + "/model.safetensors");
    } catch (const train::ConfigError& e) {
      throw std::runtime_error(std::string("--model: ") + e.what());
    }
  } else {
    m.vocab = config_vocabulary(dir, mc.vocab);
  }
  m.model = model::Llama(mc);
  try {
    model::load_hf_weights(m.model, ex, dir);
  } catch (const c10::Error& e) {
    throw std::runtime_error(e.what_without_backtrace());
  }
  m.model->set_attention_mode(model::AttentionMode::Dense);
  return m;
}

void apply_lighthouse_keys(EvalModel& m, const train::Overrides& overrides) {
  if (overrides.empty()) return;
  if (!m.has_run_config)
    throw train::ConfigError("--set: " + m.source +
                             " has no run config (a plain Llama export evaluates dense only)");
  const train::RunConfig c = train::resolve_keys(m.cfg, "", overrides);
  for (const auto& kv : overrides)
    if (kv.first.rfind("lighthouse.", 0) != 0)
      throw train::ConfigError(kv.first +
                               ": eval changes only lighthouse.* keys (the attention of --modes "
                               "lighthouse); the trained weights fix the others");
  const model::ModelConfig mc = train::to_model_config(c);
  const Issue issue = model::check(mc);
  if (!issue.ok()) throw train::ConfigError(issue.parameter + ": " + issue.message);
  model::Llama rebuilt(mc);
  torch::NoGradGuard no_grad;
  const auto weights = m.model->named_parameters();
  for (auto& p : rebuilt->named_parameters()) p.value().copy_(weights[p.key()]);
  rebuilt->set_attention_mode(m.model->attention_mode());
  m.model = rebuilt;
  m.cfg = c;
}

void place(EvalModel& m, const std::string& device) {
  const bool known = device == "auto" || device == "cpu" || device == "cuda" ||
                     (device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
                      device.find_first_not_of("0123456789", 5) == std::string::npos);
  if (!known)
    throw train::ConfigError("--device: must be auto | cpu | cuda | cuda:N, got \"" + device +
                             "\"");
  train::RunConfig probe = m.cfg;
  probe.run.device = device;
  torch::Device dev = torch::kCPU;
  try {
    dev = train::resolve_device(probe);
  } catch (const train::ConfigError& e) {
    std::string msg = e.what();
    if (msg.rfind("run.device", 0) == 0) msg = "--device" + msg.substr(10);
    throw train::ConfigError(msg);
  }
  m.device = dev;
  m.bf16 = dev.is_cuda() && m.cfg.train.precision != "fp32";
  m.model->to(dev);
  m.model->eval();
  if (m.cfg.run.threads > 0) at::set_num_threads(static_cast<int>(m.cfg.run.threads));
}

}  // namespace lighthouse::eval
