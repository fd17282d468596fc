// Hugging Face export: the model as `model.safetensors` in the LlamaForCausalLM layout plus
// `config.json`, so `transformers.LlamaForCausalLM.from_pretrained(dir)` loads it. RoPE uses
// the same rotate_half convention on both sides, so weights are copied without permutation.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>

#include "model/llama.h"
#include "model/safetensors.h"

namespace lighthouse::model {

// Hugging Face name of one of our parameter names ("layers.3.mlp.up_proj.weight" ->
// "model.layers.3.mlp.up_proj.weight"; "lm_head.weight" stays).
std::string hf_parameter_name(const std::string& name);
// Its inverse ("model.norm.weight" -> "norm.weight").
std::string our_parameter_name(const std::string& hf_name);

// The special ids of config.json and generation_config.json; -1 writes null.
struct HfSpecialTokens {
  int64_t bos = -1, eos = -1, pad = -1;
};
// Without explicit ids: the byte tokenizer's (BOS 256, EOS 257, PAD 258) for a 259-token
// vocabulary, null for any other.
HfSpecialTokens default_special_tokens(const ModelConfig& cfg);

// config.json contents for cfg stored in dtype (float32, bfloat16 or float16).
nlohmann::json hf_config(const ModelConfig& cfg, at::ScalarType dtype,
                         int64_t max_position_embeddings,
                         const std::optional<HfSpecialTokens>& tokens = std::nullopt);

// Writes dir/model.safetensors, dir/config.json and dir/generation_config.json (dir is created
// if missing). Weights are the model's current values (any attention mode: the mode is not a
// parameter) cast to dtype. `metadata` goes into the safetensors header beside
// {"format": "pt"}; `tokens` defaults to default_special_tokens.
void export_hf(const Llama& model, const std::string& dir, at::ScalarType dtype = at::kFloat,
               int64_t max_position_embeddings = 131072,
               const std::map<std::string, std::string>& metadata = {},
               const std::optional<HfSpecialTokens>& tokens = std::nullopt);

// Copies a tokenizer into an export directory (export_tokenizer.cpp) so that
// transformers.AutoTokenizer.from_pretrained(dir) loads it: `source` is a tokenizer.json file
// (copied, plus a tokenizer_config.json naming a PreTrainedTokenizerFast with the BOS / EOS
// tokens of `tokens`) or a directory whose tokenizer files (tokenizer.json,
// tokenizer_config.json, special_tokens_map.json, tokenizer.model, vocab.json, merges.txt,
// added_tokens.json, chat_template.jinja) are copied as they are (a tokenizer_config.json is
// written when it has none). Returns the file names written. Errors throw c10::Error naming
// the file.
std::vector<std::string> export_tokenizer(const std::string& source, const std::string& dir,
                                          const HfSpecialTokens& tokens,
                                          int64_t model_max_length);

// The model of a Hugging Face Llama directory (hf_import.cpp): what export_hf writes, and
// checkpoints written by transformers' LlamaForCausalLM: config.json mapped to a ModelConfig
// (vocab_size, sizes, GQA, rms_norm_eps, rope_theta, rope_scaling of type llama3), weights from
// model.safetensors or the shards of model.safetensors.index.json in float32 / bfloat16 /
// float16 (they come back as float32). Tied embeddings are untied: lm_head.weight starts as a
// copy of the embedding. Fields the model cannot honour (a bias, another activation or RoPE
// type, ...) are refused by name. `lighthouse` (levels, pool, ...) and `dense_layers` are not
// part of the Hugging Face config and come from the caller. Errors throw c10::Error starting
// with `what` (the flag or key that named the directory) and naming the file and the tensor
// or config key.
struct ExportedModel {
  ModelConfig config;
  std::map<std::string, at::Tensor> weights;  // our parameter names, float32
  std::map<std::string, std::string> metadata;
  int64_t max_position_embeddings = 0;
  bool tied_embeddings = false;
  std::string weights_file;  // model.safetensors or model.safetensors.index.json, for errors
  std::string what = "--model";
};
ExportedModel read_hf_export(const std::string& dir, const std::string& what = "--model");
// Copies the weights into a model of the same configuration; a missing, extra or misshapen
// tensor is an error naming it.
void load_hf_weights(Llama& model, const ExportedModel& exported, const std::string& dir);

}  // namespace lighthouse::model
