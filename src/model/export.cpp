// Hugging Face LlamaForCausalLM export: parameter renaming, config.json, model.safetensors.
#include "model/export.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

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

}  // namespace

std::string hf_parameter_name(const std::string& name) {
  return name.rfind("lm_head.", 0) == 0 ? name : "model." + name;
}

nlohmann::json hf_config(const ModelConfig& cfg, at::ScalarType dtype,
                         int64_t max_position_embeddings) {
  const std::string dtype_name = hf_dtype_name(dtype);
  // rope_theta is the transformers 4.x key, rope_parameters the 5.x one; each reads its own.
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
      {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", cfg.rope_theta}}},
      {"max_position_embeddings", max_position_embeddings},
      {"initializer_range", 0.02},
      {"tie_word_embeddings", false},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"mlp_bias", false},
      {"bos_token_id", kBos},
      {"eos_token_id", kEos},
      {"pad_token_id", kPad},
      {"torch_dtype", dtype_name},
      {"dtype", dtype_name},
      {"use_cache", true},
  };
}

void export_hf(const Llama& model, const std::string& dir, at::ScalarType dtype,
               int64_t max_position_embeddings,
               const std::map<std::string, std::string>& metadata) {
  TORCH_CHECK_VALUE(max_position_embeddings > 0,
                    "export_hf: max_position_embeddings must be > 0, got ",
                    max_position_embeddings);
  const nlohmann::json config = hf_config(model->config(), dtype, max_position_embeddings);
  make_directories(dir);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : model->named_parameters()) {
    tensors.emplace_back(hf_parameter_name(item.key()), item.value().detach().to(dtype));
  }
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "pt";
  save_safetensors(dir + "/model.safetensors", tensors, meta);

  const std::string path = dir + "/config.json";
  std::ofstream out(path, std::ios::trunc);
  TORCH_CHECK(out, "export_hf: cannot open '", path, "' for writing");
  out << config.dump(2) << "\n";
  TORCH_CHECK(out, "export_hf: writing '", path, "' failed");
}

ExportedModel read_hf_export(const std::string& dir) {
  const std::string cfg_path = dir + "/config.json";
  std::ifstream in(cfg_path);
  TORCH_CHECK_VALUE(in, "--model: cannot open '", cfg_path, "' (a directory written by export)");
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  TORCH_CHECK_VALUE(j.is_object(), "--model: ", cfg_path, " is not a JSON object");
  const auto get = [&](const char* key) -> const nlohmann::json& {
    TORCH_CHECK_VALUE(j.contains(key), "--model: ", cfg_path, " has no \"", key, "\"");
    return j.at(key);
  };
  TORCH_CHECK_VALUE(get("model_type") == "llama", "--model: ", cfg_path,
                    ": model_type must be \"llama\", got ", get("model_type").dump());
  ExportedModel out;
  ModelConfig& c = out.config;
  c.vocab = get("vocab_size").get<int64_t>();
  TORCH_CHECK_VALUE(c.vocab == kVocab, "--model: ", cfg_path, ": vocab_size must be ", kVocab,
                    " (the byte tokenizer), got ", c.vocab);
  c.d_model = get("hidden_size").get<int64_t>();
  c.ffn_hidden = get("intermediate_size").get<int64_t>();
  c.n_layers = get("num_hidden_layers").get<int64_t>();
  c.n_heads = get("num_attention_heads").get<int64_t>();
  c.n_kv_heads = get("num_key_value_heads").get<int64_t>();
  c.head_dim = get("head_dim").get<int64_t>();
  c.norm_eps = get("rms_norm_eps").get<double>();
  c.rope_theta = get("rope_theta").get<double>();
  out.max_position_embeddings = get("max_position_embeddings").get<int64_t>();
  TORCH_CHECK_VALUE(!get("tie_word_embeddings").get<bool>(), "--model: ", cfg_path,
                    ": tied embeddings are not supported (lighthouse exports untied ones)");

  const std::string st_path = dir + "/model.safetensors";
  out.metadata = load_safetensors_metadata(st_path);
  for (auto& [name, t] : load_safetensors(st_path)) {
    const std::string ours = name.rfind("model.", 0) == 0 ? name.substr(6) : name;
    out.weights.emplace(ours, t.to(at::kFloat));
  }
  return out;
}

void load_hf_weights(Llama& model, const ExportedModel& exported, const std::string& dir) {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const auto it = exported.weights.find(item.key());
    TORCH_CHECK_VALUE(it != exported.weights.end(), "--model: ", dir,
                      "/model.safetensors has no tensor ", hf_parameter_name(item.key()));
    TORCH_CHECK_VALUE(it->second.sizes() == item.value().sizes(), "--model: ", dir,
                      "/model.safetensors: ", hf_parameter_name(item.key()), " has shape ",
                      it->second.sizes(), ", the model expects ", item.value().sizes());
    item.value().copy_(it->second);
  }
  TORCH_CHECK_VALUE(exported.weights.size() == model->named_parameters().size(), "--model: ", dir,
                    "/model.safetensors holds ", exported.weights.size(),
                    " tensors, the model has ", model->named_parameters().size(), " parameters");
}

}  // namespace lighthouse::model
