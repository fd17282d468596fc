// What a run's token ids mean: the byte tokenizer (ids 0..255, BOS 256, EOS 257, PAD 258) or
// another tokenizer's ids, with the special ids and the tokenizer files when they are known.
// Resolved once when a run opens its data (the shards' manifest, data.tokenizer, data.bos_id,
// model.init), saved in every checkpoint and export, and read by `lighthouse export` (the ids
// of config.json, the tokenizer files) and `lighthouse eval` (byte prompts only for bytes).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "train/data.h"
#include "train/run_config.h"

namespace lighthouse::train {

struct Vocabulary {
  bool bytes = true;
  int64_t vocab_size = model::kVocab;  // the data's (the model's may be larger: padding)
  int64_t eos_id = model::kEos;        // -1 = unknown
  int64_t bos_id = model::kBos;        // -1 = none or unknown
  int64_t pad_id = model::kPad;        // -1 = none
  std::string tokenizer;               // tokenizer.json or a directory of tokenizer files; ""

  nlohmann::json to_json() const;
  // Throws ConfigError naming `origin` for a malformed object.
  static Vocabulary from_json(const nlohmann::json& j, const std::string& origin);
  // "bytes" or "vocab_size 300, eos_id 1, bos_id 2 (tokenizer DIR)", for errors and logs.
  std::string describe() const;
};

// The byte tokenizer's vocabulary.
Vocabulary byte_vocabulary();

// The vocabulary of a token stream's ids alone: a stream held in memory or byte-token shards
// are bytes; other shards carry their manifest's vocab_size, eos_id, bos_id and tokenizer.
Vocabulary stream_vocabulary(const TokenStream& stream);

// The vocabulary of a run over `data`: stream_vocabulary with data.bos_id, data.tokenizer and
// model.init layered in (a tokenizer path that no longer exists is dropped). Throws
// ConfigError naming data.source when the data is byte-tokenized but the model is not (a
// model.init with another vocabulary, or data.tokenizer given): the trainer tokenizes text
// only as bytes, other tokenizers go through `python -m lighthouse.data.tokenize`; naming
// data.tokenizer or data.bos_id for a missing path or an id outside the vocabulary.
Vocabulary resolve_vocabulary(const RunConfig& cfg, const Dataset& data);

// The vocabulary a checkpoint's metadata records ("vocabulary"); a checkpoint written before
// it existed: bytes when model.vocab_size is 259, else unknown special ids.
Vocabulary saved_vocabulary(const nlohmann::json& meta, const RunConfig& cfg,
                            const std::string& origin);

}  // namespace lighthouse::train
