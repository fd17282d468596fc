// Hugging Face export: the model as `model.safetensors` in the LlamaForCausalLM layout plus
// `config.json`, so `transformers.LlamaForCausalLM.from_pretrained(dir)` loads it. RoPE uses
// the same rotate_half convention on both sides, so weights are copied without permutation.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "model/llama.h"
#include "model/safetensors.h"

namespace lighthouse::model {

// Hugging Face name of one of our parameter names ("layers.3.mlp.up_proj.weight" ->
// "model.layers.3.mlp.up_proj.weight"; "lm_head.weight" stays).
std::string hf_parameter_name(const std::string& name);
// Its inverse ("model.norm.weight" -> "norm.weight").
std::string our_parameter_name(const std::string& hf_name);

// config.json contents for cfg stored in dtype (float32, bfloat16 or float16).
nlohmann::json hf_config(const ModelConfig& cfg, at::ScalarType dtype,
                         int64_t max_position_embeddings);

// Writes dir/model.safetensors and dir/config.json (dir is created if missing). Weights are
// the model's current values (any attention mode: the mode is not a parameter) cast to dtype.
// `metadata` goes into the safetensors header beside {"format": "pt"}.
void export_hf(const Llama& model, const std::string& dir, at::ScalarType dtype = at::kFloat,
               int64_t max_position_embeddings = 131072,
               const std::map<std::string, std::string>& metadata = {});

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
