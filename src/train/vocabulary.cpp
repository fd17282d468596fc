// Resolving, saving and reading a run's vocabulary (vocabulary.h).
#include "train/vocabulary.h"

#include <sys/stat.h>

#include <fstream>

namespace lighthouse::train {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0;
}

bool is_file(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A directory holding what transformers' AutoTokenizer reads.
bool has_tokenizer_files(const std::string& dir) {
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "tokenizer.model"})
    if (is_file(dir + "/" + name)) return true;
  return false;
}

// config.json's bos_token_id of a Hugging Face model directory, -1 when absent or not an id.
int64_t init_bos_id(const std::string& dir) {
  std::ifstream in(dir + "/config.json");
  if (!in) return -1;
  const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("bos_token_id")) return -1;
  const auto& b = j.at("bos_token_id");
  return b.is_number_integer() ? b.get<int64_t>() : -1;
}

std::string id_text(int64_t id) { return id >= 0 ? std::to_string(id) : "unknown"; }

}  // namespace

nlohmann::json Vocabulary::to_json() const {
  return {{"bytes", bytes},   {"vocab_size", vocab_size}, {"eos_id", eos_id},
          {"bos_id", bos_id}, {"pad_id", pad_id},         {"tokenizer", tokenizer}};
}

Vocabulary Vocabulary::from_json(const nlohmann::json& j, const std::string& origin) {
  Vocabulary v;
  try {
    v.bytes = j.at("bytes").get<bool>();
    v.vocab_size = j.at("vocab_size").get<int64_t>();
    v.eos_id = j.at("eos_id").get<int64_t>();
    v.bos_id = j.at("bos_id").get<int64_t>();
    v.pad_id = j.at("pad_id").get<int64_t>();
    v.tokenizer = j.at("tokenizer").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(origin + ": vocabulary is malformed (" + e.what() + ")");
  }
  return v;
}

std::string Vocabulary::describe() const {
  if (bytes) return "bytes";
  std::string s = "vocab_size " + std::to_string(vocab_size) + ", eos_id " + id_text(eos_id) +
                  ", bos_id " + id_text(bos_id);
  return s + (tokenizer.empty() ? " (tokenizer unknown)" : " (tokenizer " + tokenizer + ")");
}

Vocabulary byte_vocabulary() { return Vocabulary{}; }

Vocabulary stream_vocabulary(const TokenStream& stream) {
  if (!stream.shards || stream.shards->manifest().tokenizer == "bytes") return byte_vocabulary();
  const Manifest& m = stream.shards->manifest();
  Vocabulary v;
  v.bytes = false;
  v.vocab_size = m.vocab_size;
  v.eos_id = m.eos_id;
  v.bos_id = m.bos_id;
  v.pad_id = -1;
  v.tokenizer = exists(m.tokenizer) ? m.tokenizer : "";
  return v;
}

Vocabulary resolve_vocabulary(const RunConfig& cfg, const Dataset& data) {
  Vocabulary v = stream_vocabulary(data.train);
  const std::string& init = cfg.model.init;
  if (v.bytes) {
    const std::string fix = "; write token shards with the model's tokenizer (python -m "
                            "lighthouse.data.tokenize --tokenizer DIR --input " +
                            cfg.data.source + " --out SHARDS) and set data.source = SHARDS";
    if (!init.empty() && (cfg.model.vocab != model::kVocab || has_tokenizer_files(init)))
      throw ConfigError("data.source: " + cfg.data.source +
                        " is tokenized as bytes (the trainer's only on-the-fly tokenizer), but "
                        "model.init " + init + " has its own vocabulary (vocab_size " +
                        std::to_string(cfg.model.vocab) + ")" + fix);
    if (!cfg.data.tokenizer.empty())
      throw ConfigError("data.source: " + cfg.data.source +
                        " is tokenized as bytes (the trainer's only on-the-fly tokenizer), but "
                        "data.tokenizer names " + cfg.data.tokenizer + fix);
    return v;
  }
  if (!cfg.data.tokenizer.empty()) {
    if (!exists(cfg.data.tokenizer))
      throw ConfigError("data.tokenizer: no such file or directory: " + cfg.data.tokenizer);
    v.tokenizer = cfg.data.tokenizer;
  } else if (v.tokenizer.empty() && !init.empty() && has_tokenizer_files(init)) {
    v.tokenizer = init;
  }
  if (cfg.data.bos_id >= 0) {
    if (cfg.data.bos_id >= v.vocab_size)
      throw ConfigError("data.bos_id: " + std::to_string(cfg.data.bos_id) +
                        " is outside the data's vocabulary [0, " + std::to_string(v.vocab_size) +
                        ")");
    v.bos_id = cfg.data.bos_id;
  } else if (v.bos_id < 0 && !init.empty()) {
    const int64_t b = init_bos_id(init);
    if (b >= 0 && b < v.vocab_size) v.bos_id = b;
  }
  return v;
}

Vocabulary saved_vocabulary(const nlohmann::json& meta, const RunConfig& cfg,
                            const std::string& origin) {
  if (meta.contains("vocabulary")) return Vocabulary::from_json(meta.at("vocabulary"), origin);
  if (meta.value("data_vocab_size", cfg.model.vocab) == model::kVocab)
    return byte_vocabulary();
  Vocabulary v;
  v.bytes = false;
  v.vocab_size = cfg.model.vocab;
  v.eos_id = v.bos_id = v.pad_id = -1;
  return v;
}

}  // namespace lighthouse::train
