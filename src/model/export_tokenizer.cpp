// The tokenizer files of a Hugging Face export (export.h's export_tokenizer): copied from the
// run's tokenizer, with a tokenizer_config.json written for a bare tokenizer.json.
#include <sys/stat.h>

#include <fstream>
#include <algorithm>
#include <sstream>

#include "model/export.h"

namespace lighthouse::model {
namespace {

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in, "export: cannot read tokenizer file '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  TORCH_CHECK(in.good() || in.eof(), "export: reading '", path, "' failed");
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  TORCH_CHECK(out, "export: cannot open '", path, "' for writing");
  out << text;
  out.flush();
  TORCH_CHECK(out, "export: writing '", path, "' failed");
}

// The text of token `id` in a tokenizer.json: its added tokens, else the model's vocabulary
// (an object token -> id for BPE / WordPiece, a list of [piece, score] for Unigram).
nlohmann::json token_text(const nlohmann::json& tok, int64_t id) {
  if (id < 0) return nullptr;
  if (tok.contains("added_tokens") && tok["added_tokens"].is_array())
    for (const auto& t : tok["added_tokens"])
      if (t.value("id", int64_t{-1}) == id && t.contains("content")) return t["content"];
  if (tok.contains("model") && tok["model"].contains("vocab")) {
    const auto& v = tok["model"]["vocab"];
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it)
        if (it.value().is_number_integer() && it.value().get<int64_t>() == id) return it.key();
    } else if (v.is_array() && id < static_cast<int64_t>(v.size()) && v[id].is_array() &&
               !v[id].empty()) {
      return v[id][0];
    }
  }
  return nullptr;
}

// A tokenizer_config.json for a bare tokenizer.json: transformers loads it as a
// PreTrainedTokenizerFast whose BOS / EOS / PAD are the run's.
std::string tokenizer_config(const std::string& tokenizer_json_path, const HfSpecialTokens& ids,
                             int64_t model_max_length) {
  const auto tok = nlohmann::json::parse(read_file(tokenizer_json_path), nullptr, false);
  TORCH_CHECK(tok.is_object(), "export: '", tokenizer_json_path, "' is not a tokenizer.json");
  const nlohmann::json eos = token_text(tok, ids.eos);
  TORCH_CHECK(ids.eos < 0 || !eos.is_null(), "export: '", tokenizer_json_path,
              "' has no token with the data's eos_id ", ids.eos);
  const nlohmann::json cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                              {"bos_token", token_text(tok, ids.bos)},
                              {"eos_token", eos},
                              {"pad_token", token_text(tok, ids.pad)},
                              {"model_max_length", model_max_length},
                              {"clean_up_tokenization_spaces", false}};
  return cfg.dump(2) + "\n";
}

}  // namespace

std::vector<std::string> export_tokenizer(const std::string& source, const std::string& dir,
                                          const HfSpecialTokens& tokens,
                                          int64_t model_max_length) {
  std::vector<std::string> written;
  if (is_file(source)) {
    write_file(dir + "/tokenizer.json", read_file(source));
    write_file(dir + "/tokenizer_config.json",
               tokenizer_config(source, tokens, model_max_length));
    return {"tokenizer.json", "tokenizer_config.json"};
  }
  TORCH_CHECK(is_dir(source), "'", source, "' is neither a tokenizer.json file nor a directory");
  const auto present = [&](const char* name) { return is_file(source + "/" + name); };
  TORCH_CHECK(present("tokenizer.json") || present("tokenizer.model") || present("vocab.json"),
              "the tokenizer directory '", source,
              "' holds no tokenizer.json, tokenizer.model or vocab.json");
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                           "chat_template.jinja"}) {
    if (!present(name)) continue;
    write_file(dir + "/" + name, read_file(source + "/" + name));
    written.push_back(name);
  }
  const auto has = [&](const char* name) {
    return std::find(written.begin(), written.end(), name) != written.end();
  };
  if (!has("tokenizer_config.json") && has("tokenizer.json")) {
    write_file(dir + "/tokenizer_config.json",
               tokenizer_config(source + "/tokenizer.json", tokens, model_max_length));
    written.push_back("tokenizer_config.json");
  }
  return written;
}

}  // namespace lighthouse::model
