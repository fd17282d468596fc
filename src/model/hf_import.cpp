// Hugging Face Llama import, the reverse of export.cpp: config.json mapped (and unsupported
// fields refused by name), weights from one or many safetensors files.
#include <cmath>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "model/export.h"

namespace lighthouse::model {
namespace {

nlohmann::json read_json(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  TORCH_CHECK_VALUE(in, what, ": cannot open '", path, "' (a Hugging Face Llama directory)");
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  TORCH_CHECK_VALUE(j.is_object(), what, ": ", path, " is not a JSON object");
  return j;
}

// Keys of config.json that carry nothing the model computes with.
const std::set<std::string>& ignored_keys() {
  static const std::set<std::string> k = {
      "architectures",   "bos_token_id", "eos_token_id", "pad_token_id",
      "torch_dtype",     "dtype",        "transformers_version", "use_cache",
      "initializer_range", "_name_or_path", "max_position_embeddings", "output_attentions",
      "output_hidden_states", "return_dict", "tie_word_embeddings", "model_type"};
  return k;
}

// Reads config.json into out.config, refusing what the lighthouse Llama cannot represent.
void map_config(const nlohmann::json& j, const std::string& path, const std::string& what,
                ExportedModel& out) {
  const auto fail_if = [&](bool bad, const std::string& key, const std::string& why) {
    TORCH_CHECK_VALUE(!bad, what, ": ", path, ": \"", key, "\" ", why);
  };
  const auto get = [&](const char* key) -> const nlohmann::json& {
    TORCH_CHECK_VALUE(j.contains(key) && !j.at(key).is_null(), what, ": ", path, " has no \"",
                      key, "\"");
    return j.at(key);
  };
  const auto number = [&](const char* key, double fallback) {
    if (!j.contains(key) || j.at(key).is_null()) return fallback;
    fail_if(!j.at(key).is_number(), key, "must be a number, got " + j.at(key).dump());
    return j.at(key).get<double>();
  };
  // A size: a positive integer (2.5 or 0 are refused, not truncated or accepted).
  const auto size = [&](const char* key, std::optional<int64_t> fallback) -> int64_t {
    if (fallback && (!j.contains(key) || j.at(key).is_null())) return *fallback;
    const nlohmann::json& v = get(key);
    fail_if(!v.is_number_integer() || v.get<int64_t>() < 1, key,
            "must be a positive integer, got " + v.dump());
    return v.get<int64_t>();
  };
  try {
    fail_if(get("model_type") != "llama", "model_type",
            "must be \"llama\", got " + get("model_type").dump());
    if (j.contains("architectures") && j["architectures"].is_array())
      for (const auto& a : j["architectures"])
        fail_if(a != "LlamaForCausalLM", "architectures",
                "must be [\"LlamaForCausalLM\"], got " + j["architectures"].dump());
    ModelConfig& c = out.config;
    c.vocab = size("vocab_size", std::nullopt);
    c.d_model = size("hidden_size", std::nullopt);
    c.ffn_hidden = size("intermediate_size", std::nullopt);
    c.n_layers = size("num_hidden_layers", std::nullopt);
    c.n_heads = size("num_attention_heads", std::nullopt);
    c.n_kv_heads = size("num_key_value_heads", c.n_heads);
    c.head_dim = size("head_dim", c.d_model / c.n_heads);
    c.norm_eps = number("rms_norm_eps", 1e-6);
    fail_if(!(c.norm_eps > 0), "rms_norm_eps", "must be > 0");
    out.max_position_embeddings = size("max_position_embeddings", 2048);
    if (j.contains("tie_word_embeddings") && !j["tie_word_embeddings"].is_null())
      fail_if(!j["tie_word_embeddings"].is_boolean(), "tie_word_embeddings",
              "must be true or false, got " + j["tie_word_embeddings"].dump());
    out.tied_embeddings = j.value("tie_word_embeddings", false);

    std::set<std::string> handled = {"vocab_size", "hidden_size", "intermediate_size",
                                     "num_hidden_layers", "num_attention_heads",
                                     "num_key_value_heads", "head_dim", "rms_norm_eps",
                                     "rope_theta", "rope_scaling", "rope_parameters"};
    // Must-be-off features, each refused by name when set.
    const auto must_equal = [&](const char* key, const nlohmann::json& ok) {
      handled.insert(key);
      if (j.contains(key) && !j.at(key).is_null())
        fail_if(j.at(key) != ok, key, "must be " + ok.dump() + " (the lighthouse Llama has no "
                                          "other), got " + j.at(key).dump());
    };
    must_equal("hidden_act", "silu");
    must_equal("attention_bias", false);
    must_equal("mlp_bias", false);
    must_equal("pretraining_tp", 1);
    if (j.contains("attention_dropout") && j["attention_dropout"].is_number())
      fail_if(j["attention_dropout"].get<double>() != 0.0, "attention_dropout",
              "must be 0 (no dropout in the lighthouse Llama), got " +
                  j["attention_dropout"].dump());
    handled.insert("attention_dropout");

    // RoPE: transformers 5 writes rope_parameters (rope_theta inside), 4.x rope_theta and
    // rope_scaling; a rope_parameters of type default next to a rope_scaling defers to it.
    for (const char* key : {"rope_scaling", "rope_parameters"})  // "yarn", 5 or [1, 2]: refused
      if (j.contains(key))
        fail_if(!j.at(key).is_null() && !j.at(key).is_object(), key,
                "must be an object with a rope_type (or null), got " + j.at(key).dump());
    nlohmann::json rope = nlohmann::json::object();
    std::string rope_key = "rope_scaling";
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) rope = j["rope_scaling"];
    if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
      const auto& rp = j["rope_parameters"];
      const std::string t = rp.value("rope_type", rp.value("type", std::string("default")));
      if (rope.empty() || t != "default") rope = rp, rope_key = "rope_parameters";
    }
    c.rope_theta = number("rope_theta", 10000.0);
    if (rope.contains("rope_theta")) c.rope_theta = rope["rope_theta"].get<double>();
    fail_if(!(c.rope_theta > 0), "rope_theta", "must be > 0");
    const std::string type = rope.value("rope_type", rope.value("type", std::string("default")));
    fail_if(type != "default" && type != "llama3", rope_key + ".rope_type",
            "\"" + type + "\" is not supported (default, llama3)");
    static const std::set<std::string> rope_fields = {
        "rope_type", "type", "rope_theta", "factor", "low_freq_factor", "high_freq_factor",
        "original_max_position_embeddings"};
    for (const auto& [k, v] : rope.items()) {
      if (k == "partial_rotary_factor") {
        fail_if(v.get<double>() != 1.0, rope_key + "." + k, "must be 1.0, got " + v.dump());
        continue;
      }
      fail_if(!rope_fields.count(k), rope_key + "." + k, "is not supported");
    }
    if (type == "llama3") {
      const auto need = [&](const char* k) {
        TORCH_CHECK_VALUE(rope.contains(k), what, ": ", path, ": ", rope_key, " of type llama3 has no \"",
                          k, "\"");
        fail_if(!rope[k].is_number() || !(rope[k].get<double>() > 0), rope_key + "." + k,
                "must be a positive number, got " + rope[k].dump());
        return rope[k].get<double>();
      };
      c.rope_scaling.enabled = true;
      c.rope_scaling.factor = need("factor");
      c.rope_scaling.low_freq_factor = need("low_freq_factor");
      c.rope_scaling.high_freq_factor = need("high_freq_factor");
      need("original_max_position_embeddings");
      fail_if(!rope["original_max_position_embeddings"].is_number_integer(),
              rope_key + ".original_max_position_embeddings",
              "must be an integer, got " + rope["original_max_position_embeddings"].dump());
      c.rope_scaling.original_context = rope["original_max_position_embeddings"].get<int64_t>();
    }
    for (const auto& [k, v] : j.items())
      fail_if(!handled.count(k) && !ignored_keys().count(k), k,
              "is not supported by the lighthouse Llama (value " + v.dump() + ")");
  } catch (const nlohmann::json::exception& e) {
    TORCH_CHECK_VALUE(false, what, ": ", path, ": a field has the wrong type (", e.what(), ")");
  }
}

}  // namespace

ExportedModel read_hf_export(const std::string& dir, const std::string& what) {
  ExportedModel out;
  out.what = what;
  const std::string cfg_path = dir + "/config.json";
  map_config(read_json(cfg_path, what), cfg_path, what, out);

  // The weight files: one model.safetensors, or the shards an index names.
  std::vector<std::string> files;
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";
  if (std::ifstream(single).good()) {
    files.push_back(single);
    out.weights_file = single;
  } else {
    TORCH_CHECK_VALUE(std::ifstream(index).good(), what, ": ", dir,
                      " has neither model.safetensors nor model.safetensors.index.json");
    const nlohmann::json j = read_json(index, what);
    TORCH_CHECK_VALUE(j.contains("weight_map") && j["weight_map"].is_object(), what, ": ", index,
                      " has no \"weight_map\" object");
    std::set<std::string> names;
    for (const auto& [tensor, file] : j["weight_map"].items()) {
      TORCH_CHECK_VALUE(file.is_string() && file.get<std::string>().find('/') == std::string::npos,
                        what, ": ", index, ": weight_map[\"", tensor, "\"] must be a file name");
      names.insert(file.get<std::string>());
    }
    for (const auto& n : names) files.push_back(dir + "/" + n);
    out.weights_file = index;
  }
  for (const auto& f : files) {
    TORCH_CHECK_VALUE(std::ifstream(f).good(), what, ": cannot open '", f, "' (named by ",
                      out.weights_file, ")");
    for (const auto& [k, v] : load_safetensors_metadata(f)) out.metadata.emplace(k, v);
    for (auto& [name, t] : load_safetensors(f)) {
      if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;  // a buffer, derived
      const at::ScalarType dt = t.scalar_type();
      TORCH_CHECK_VALUE(dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf, what, ": ", f,
                        ": tensor ", name, " has dtype ", dt,
                        ", expected float32, bfloat16 or float16");
      at::Tensor w = t.to(at::kFloat);  // [shape]
      TORCH_CHECK_VALUE(at::isfinite(w).all().item<bool>(), what, ": ", f, ": tensor ", name,
                        " holds NaN or infinite values");
      out.weights.emplace(our_parameter_name(name), std::move(w));
    }
  }
  if (out.tied_embeddings && !out.weights.count("lm_head.weight") &&
      out.weights.count("embed_tokens.weight"))
    out.weights.emplace("lm_head.weight", out.weights.at("embed_tokens.weight").clone());
  return out;
}

void load_hf_weights(Llama& model, const ExportedModel& exported, const std::string& dir) {
  torch::NoGradGuard no_grad;
  const std::string& file = exported.weights_file.empty() ? dir : exported.weights_file;
  const std::string& what = exported.what;
  for (auto& item : model->named_parameters()) {
    const auto it = exported.weights.find(item.key());
    TORCH_CHECK_VALUE(it != exported.weights.end(), what, ": ", file, " has no tensor ",
                      hf_parameter_name(item.key()));
    TORCH_CHECK_VALUE(it->second.sizes() == item.value().sizes(), what, ": ", file, ": ",
                      hf_parameter_name(item.key()), " has shape ", it->second.sizes(),
                      ", the model expects ", item.value().sizes());
    item.value().copy_(it->second);
  }
  const auto params = model->named_parameters();
  for (const auto& [name, t] : exported.weights)
    TORCH_CHECK_VALUE(params.contains(name), what, ": ", file, " holds tensor ",
                      hf_parameter_name(name), ", which the lighthouse Llama does not have");
}

}  // namespace lighthouse::model
