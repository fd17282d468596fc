// Hugging Face LlamaForCausalLM export: parameter renaming, config.json, model.safetensors
// (the import, its reverse, is hf_import.cpp).
#include "model/export.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace lighthouse::model {
namespace {

std::string hf_dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default:
      TORCH_CHECK_VALUE(false, "export_hf: dtype must be float32, bfloat16 or float16, got ",
                        dtype);
  }
}

// mkdir -p. POSIX on purpose: libtorch.so exports its own std::filesystem symbols, which
// the dynamic linker may bind in place of ours (remove_all crashes that way).
void make_directories(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string prefix = dir.substr(0, pos);
    TORCH_CHECK(::mkdir(prefix.c_str(), 0755) == 0 || errno == EEXIST,
                "export_hf: cannot create directory '", prefix, "': ", std::strerror(errno));
  }
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::trunc);
  TORCH_CHECK(out, "export_hf: cannot open '", path, "' for writing");
  out << j.dump(2) << "\n";
  out.flush();
  TORCH_CHECK(out, "export_hf: writing '", path, "' failed");
}

}  // namespace

std::string hf_parameter_name(const std::string& name) {
  return name.rfind("lm_head.", 0) == 0 ? name : "model." + name;
}

std::string our_parameter_name(const std::string& hf_name) {
  return hf_name.rfind("model.", 0) == 0 ? hf_name.substr(6) : hf_name;
}

HfSpecialTokens default_special_tokens(const ModelConfig& cfg) {
  if (cfg.vocab == kVocab) return {kBos, kEos, kPad};  // the byte tokenizer's specials
  return {};
}

nlohmann::json hf_config(const ModelConfig& cfg, at::ScalarType dtype,
                         int64_t max_position_embeddings,
                         const std::optional<HfSpecialTokens>& tokens) {
  const HfSpecialTokens ids = tokens ? *tokens : default_special_tokens(cfg);
  const auto id = [](int64_t v) { return v >= 0 ? nlohmann::json(v) : nlohmann::json(nullptr); };
  const std::string dtype_name = hf_dtype_name(dtype);
  // rope_theta / rope_scaling are the transformers 4.x keys, rope_parameters the 5.x one;
  // each reads its own.
  nlohmann::json rope = {{"rope_type", "default"}, {"rope_theta", cfg.rope_theta}};
  nlohmann::json scaling = nullptr;
  if (cfg.rope_scaling.enabled) {
    scaling = {{"rope_type", "llama3"},
               {"factor", cfg.rope_scaling.factor},
               {"low_freq_factor", cfg.rope_scaling.low_freq_factor},
               {"high_freq_factor", cfg.rope_scaling.high_freq_factor},
               {"original_max_position_embeddings", cfg.rope_scaling.original_context}};
    rope = scaling;
    rope["rope_theta"] = cfg.rope_theta;
  }
  return nlohmann::json{
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", cfg.vocab},
      {"hidden_size", cfg.d_model},
      {"intermediate_size", cfg.ffn_hidden},
      {"num_hidden_layers", cfg.n_layers},
      {"num_attention_heads", cfg.n_heads},
      {"num_key_value_heads", cfg.n_kv_heads},
      {"head_dim", cfg.head_dim},
      {"hidden_act", "silu"},
      {"rms_norm_eps", cfg.norm_eps},
      {"rope_theta", cfg.rope_theta},
      {"rope_scaling", scaling},
      {"rope_parameters", rope},
      {"max_position_embeddings", max_position_embeddings},
      {"initializer_range", 0.02},
      {"tie_word_embeddings", false},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"mlp_bias", false},
      {"bos_token_id", id(ids.bos)},
      {"eos_token_id", id(ids.eos)},
      {"pad_token_id", id(ids.pad)},
      {"torch_dtype", dtype_name},
      {"dtype", dtype_name},
      {"use_cache", true},
  };
}

void export_hf(const Llama& model, const std::string& dir, at::ScalarType dtype,
               int64_t max_position_embeddings,
               const std::map<std::string, std::string>& metadata,
               const std::optional<HfSpecialTokens>& tokens) {
  TORCH_CHECK_VALUE(max_position_embeddings > 0,
                    "export_hf: max_position_embeddings must be > 0, got ",
                    max_position_embeddings);
  const nlohmann::json config =
      hf_config(model->config(), dtype, max_position_embeddings, tokens);
  make_directories(dir);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : model->named_parameters()) {
    tensors.emplace_back(hf_parameter_name(item.key()), item.value().detach().to(dtype));
  }
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "pt";
  save_safetensors(dir + "/model.safetensors", tensors, meta);

  write_json(dir + "/config.json", config);
  // What generate() reads; the same special ids as config.json.
  write_json(dir + "/generation_config.json", {{"_from_model_config", true},
                                               {"bos_token_id", config.at("bos_token_id")},
                                               {"eos_token_id", config.at("eos_token_id")},
                                               {"pad_token_id", config.at("pad_token_id")}});
}

}  // namespace lighthouse::model
