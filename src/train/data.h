// Training data. A token stream comes from token shards (any tokenizer, read as needed:
// shards.h) or from documents (the built-in corpus, a text file, a directory tree of text
// files, or JSON Lines with a text field; any of them gzip-compressed) byte-tokenized and
// joined with EOS, in memory or converted once into shards (data.cache). The stream is cut
// into fixed-length sequences. The last
// data.val_fraction of the sequences is the held-out validation split. Training visits the
// other sequences epoch by epoch, each epoch in its own seeded permutation, from a cursor
// (sequences consumed so far) that checkpoints save and restore.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "train/run_config.h"
#include "train/shards.h"

namespace lighthouse::train {

// Byte tokenizer: one token per byte (0..255); specials are model::kBos/kEos/kPad.
std::vector<uint16_t> encode(std::string_view text);
std::string decode(const std::vector<uint16_t>& tokens);  // specials are dropped

// The files of `source` (a file, or a directory tree's *.txt / *.text / *.md / *.jsonl /
// *.json, each optionally .gz, hidden entries skipped) in sorted path order. Throws ConfigError
// naming data.source.
std::vector<std::string> list_document_files(const std::string& source);

// Receives documents piece by piece: bytes(...) any number of times, then end().
struct DocumentSink {
  std::function<void(std::string_view)> bytes;
  std::function<void()> end;
};
// The default of data.max_document_bytes: the longest JSON Lines line read (64 MiB).
constexpr int64_t kMaxDocumentBytes = int64_t{1} << 26;

// Streams the documents of one file into sink: a JSON Lines file (*.jsonl / *.json, optionally
// .gz) one line at a time (its `text_key` field is a document), any other file as one document
// in blocks. on_offset(bytes of the file read so far) reports progress. Memory: one block and
// the longest line, which may not exceed max_line_bytes (decompressed; an error naming the
// file, line and data.max_document_bytes past it). Throws ConfigError naming data.source,
// data.text_key or data.max_document_bytes.
void stream_documents(const std::string& path, const std::string& text_key,
                      const DocumentSink& sink, const std::function<void(int64_t)>& on_offset,
                      int64_t max_line_bytes = kMaxDocumentBytes);
// Streams every document of every file of list_document_files(source) into sink.
void stream_source(const std::string& source, const std::string& text_key,
                   const DocumentSink& sink, int64_t max_line_bytes = kMaxDocumentBytes);
// Calls fn(document) for every document of every file of list_document_files(source).
void for_each_document(const std::string& source, const std::string& text_key,
                       const std::function<void(std::string_view)>& fn,
                       int64_t max_line_bytes = kMaxDocumentBytes);

// Byte-tokenizes every document of `sources` into a shard dataset at out_dir (vocabulary
// model::kVocab, EOS model::kEos). progress(bytes read, bytes total) follows the input files.
// `signature` is recorded in the manifest (source_signature for the cache).
Manifest tokenize_bytes(const std::vector<std::string>& sources, const std::string& text_key,
                        const std::string& out_dir, int64_t shard_tokens,
                        const std::function<void(int64_t, int64_t)>& progress = {},
                        int64_t max_line_bytes = kMaxDocumentBytes);
// What a cache of `source` was made from: text_key and every file's path, size and mtime.
std::string source_signature(const std::string& source, const std::string& text_key);
// The directory data.cache names for a run config ("" when the stream is held in memory).
std::string cache_dir(const RunConfig& cfg);

// A token stream: ids held in memory (byte-tokenized text), or a window [begin, end) of
// token shards.
struct TokenStream {
  std::vector<uint16_t> tokens;            // doc EOS doc EOS ... (in memory), or
  std::shared_ptr<const ShardSet> shards;  // when set: the window [begin, end) of its stream
  int64_t begin = 0, end = 0;

  int64_t size() const;
  bool empty() const { return size() == 0; }
  // Tokens [pos, pos + n) of this stream into out.
  void read(int64_t pos, int64_t n, int64_t* out) const;
};

struct Dataset {
  TokenStream train, val;
  int64_t documents = 0;
  int64_t vocab_size = model::kVocab;  // ids are below it (the shards' header; bytes: kVocab)
  int64_t eos_id = model::kEos;
  std::string description;  // one line for the log
};

// Progress of the long data stages: stage "tokenize" (data.cache conversion, bytes of input)
// and "verify" (shard checksums, bytes of ids), done of total.
using DataProgress = std::function<void(const std::string& stage, int64_t done, int64_t total)>;

// What may be done with data.cache: Write (training: convert when missing or stale) or
// ReadOnly (eval, compare: use a current cache, else hold the text in memory; the config may
// come from someone else's model, so its paths are never written, docs/trust.md).
enum class CacheUse { Write, ReadOnly };

// Every document of data.source (or the built-in corpus), byte-tokenized and joined with EOS,
// or the shards of data.source; *documents, *what (the source's name for the log) and
// *vocab_size are set when given.
TokenStream load_stream(const RunConfig& cfg, int64_t* documents = nullptr,
                        std::string* what = nullptr, int64_t* vocab_size = nullptr,
                        const DataProgress& progress = {}, CacheUse cache = CacheUse::Write);

// Loads data.source (or generates the built-in corpus) and splits it. Throws ConfigError when
// the splits are too small for one batch of train.context tokens.
Dataset load_dataset(const RunConfig& cfg, const DataProgress& progress = {},
                     CacheUse cache = CacheUse::Write);

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

  // Called on every sequence read with its index in stream order and its N + 1 ids, which it
  // may rewrite (data.needles: train/needles.h's needle_hook).
  using Hook = std::function<void(int64_t index, int64_t* seq, int64_t len)>;
  void set_hook(Hook hook) { hook_ = std::move(hook); }

 private:
  void copy_sequence(int64_t index, int64_t* out) const {
    stream_->read(index * context_, context_ + 1, out);
    if (hook_) hook_(index, out, context_ + 1);
  }

  const TokenStream* stream_;
  int64_t context_, num_seq_;
  uint64_t seed_;
  bool shuffle_;
  uint64_t cursor_ = 0;
  int64_t perm_epoch_ = -1;
  std::vector<int64_t> perm_;  // [num_seq_] order of the cached epoch
  Hook hook_;
};

}  // namespace lighthouse::train
