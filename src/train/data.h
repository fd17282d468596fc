// Training data. Documents (the built-in corpus, a text file, a directory tree of text files,
// or JSON Lines with a text field; any of them gzip-compressed) are byte-tokenized, joined
// with EOS into one token stream, and cut into fixed-length sequences. The last
// data.val_fraction of the sequences is the held-out validation split. Training visits the
// other sequences epoch by epoch, each epoch in its own seeded permutation, from a cursor
// (sequences consumed so far) that checkpoints save and restore.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "train/run_config.h"

namespace lighthouse::train {

// Byte tokenizer: one token per byte (0..255); specials are model::kBos/kEos/kPad.
std::vector<uint16_t> encode(std::string_view text);
std::string decode(const std::vector<uint16_t>& tokens);  // specials are dropped

// Calls fn(document) for every document under `source` (a file or a directory tree), files in
// sorted path order. *.jsonl / *.json (optionally .gz) are JSON Lines whose `text_key` field is
// a document; other files (*.txt, *.text, *.md, optionally .gz) are one document each.
// Throws ConfigError naming data.source or data.text_key.
void for_each_document(const std::string& source, const std::string& text_key,
                       const std::function<void(std::string_view)>& fn);

struct TokenStream {
  std::vector<uint16_t> tokens;  // doc EOS doc EOS ...
};

struct Dataset {
  TokenStream train, val;
  int64_t documents = 0;
  std::string description;  // one line for the log
};

// Every document of data.source (or the built-in corpus), byte-tokenized and joined with EOS;
// *documents and *what (the source's name for the log) are set when given.
TokenStream load_stream(const RunConfig& cfg, int64_t* documents = nullptr,
                        std::string* what = nullptr);

// Loads data.source (or generates the built-in corpus) and splits it. Throws ConfigError when
// the splits are too small for one batch of train.context tokens.
Dataset load_dataset(const RunConfig& cfg);

class SequenceLoader {
 public:
  // Sequence i is stream[i*N, i*N + N + 1) (inputs and shifted targets), N = context.
  SequenceLoader(const TokenStream& stream, int64_t context, uint64_t seed, bool shuffle);

  int64_t size() const { return num_seq_; }  // sequences per epoch

  // The next `batch` sequences in visiting order: [batch, N + 1] int64. Advances the cursor.
  at::Tensor next_batch(int64_t batch);
  // Rank `rank`'s slice of the next `batch` x `ranks` sequences (the ranks' slices in rank
  // order): [batch, N + 1] int64. Advances the cursor by batch x ranks on every rank.
  at::Tensor next_batch(int64_t batch, int64_t rank, int64_t ranks);
  // Sequences first..first+batch-1 in stream order (validation): [batch, N + 1] int64.
  at::Tensor batch_at(int64_t first, int64_t batch) const;

  uint64_t cursor() const { return cursor_; }  // sequences consumed since the start
  void seek(uint64_t cursor) { cursor_ = cursor; }
  // The index of the sequence visited at `cursor` (exposed for tests).
  int64_t sequence_at(uint64_t cursor);

 private:
  void copy_sequence(int64_t index, int64_t* out) const;

  const TokenStream* stream_;
  int64_t context_, num_seq_;
  uint64_t seed_;
  bool shuffle_;
  uint64_t cursor_ = 0;
  int64_t perm_epoch_ = -1;
  std::vector<int64_t> perm_;  // [num_seq_] order of the cached epoch
};

}  // namespace lighthouse::train
