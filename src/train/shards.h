// Token shards: pre-tokenized data on disk, any tokenizer (docs/data.md). A dataset is a
// directory with manifest.json and shard files; each shard is a 64-byte header (magic
// "LHTOKENS", version, token width, vocabulary size, token count, document count, EOS id)
// followed by the token ids, little-endian. Concatenating the shards in manifest order gives
// the token stream "doc EOS doc EOS ..." (a document may continue into the next shard).
// Shards are read with pread: nothing is copied into memory but the sequences asked for, and
// a shard truncated or replaced while open is an error naming it (a mapping would SIGBUS).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/run_config.h"

namespace lighthouse::train {

constexpr int64_t kShardHeaderBytes = 64;
constexpr uint32_t kShardVersion = 1;
inline constexpr char kShardMagic[9] = "LHTOKENS";
inline constexpr char kManifestName[] = "manifest.json";

struct ShardHeader {
  uint32_t version = kShardVersion;
  uint32_t token_bytes = 2;  // 2 = uint16 ids, 4 = uint32 ids
  uint64_t vocab_size = 0;
  uint64_t tokens = 0;
  uint64_t documents = 0;  // EOS ids in the shard
  uint64_t eos_id = 0;
};

struct ShardEntry {
  std::string name;  // file name inside the dataset directory
  int64_t tokens = 0, documents = 0;
  uint32_t crc32 = 0;  // zlib CRC-32 of the whole file, header included
};

struct Manifest {
  uint32_t token_bytes = 2;
  int64_t vocab_size = 0, eos_id = 0;
  int64_t bos_id = -1;    // the tokenizer's BOS id (manifest "bos_id"), -1 = none or unknown
  std::string tokenizer;  // free text: what made the ids ("bytes", a tokenizer path)
  std::vector<ShardEntry> shards;
  std::string source;  // free text: the signature of the source it was converted from
  int64_t tokens() const;
  int64_t documents() const;
};

// A shard that changed under a reader (truncated, replaced) or holds an id outside the
// vocabulary: what() names the shard. The trainer checkpoints its last whole step on it.
class ShardReadError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

// True when `dir` is a directory holding manifest.json.
bool is_shard_dataset(const std::string& dir);
// manifest.json of `dir`; malformed or missing fields throw ConfigError naming the file.
Manifest read_manifest(const std::string& dir);

// Writes a dataset directory: tokens are appended document by document and cut into shards
// of at most `shard_tokens`; finish() writes the last shard and manifest.json (each file
// through a temporary name, then renamed). Every write is checked; errors name the file.
class ShardWriter {
 public:
  ShardWriter(std::string dir, int64_t vocab_size, int64_t eos_id, std::string tokenizer,
              int64_t shard_tokens = int64_t{1} << 28);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  void append(const uint32_t* ids, int64_t n);  // token ids of (part of) a document
  void end_document();                          // appends EOS
  // `source`: recorded in the manifest (the signature a cache compares).
  Manifest finish(const std::string& source = "");
  int64_t tokens() const { return total_tokens_; }

 private:
  void open_shard();
  void close_shard();

  std::string dir_, tokenizer_;
  Manifest manifest_;
  int64_t shard_tokens_;
  std::FILE* file_ = nullptr;
  std::string file_path_;
  ShardEntry current_;
  uint32_t crc_ = 0;
  std::vector<unsigned char> buf_;
  int64_t total_tokens_ = 0;
  bool finished_ = false;
};

// The shards of a dataset as one random-access token stream.
class ShardSet {
 public:
  // Opens every shard of `dir` and checks each header against the manifest (magic, version,
  // width, vocabulary, EOS id, token and document counts, file size; sizes in overflow-checked
  // arithmetic). With verify, every shard's CRC-32 is recomputed and every id checked to be
  // below the vocabulary size, in bounded blocks. `progress(bytes_done, bytes_total)` is
  // called then. Errors throw ConfigError naming the shard file.
  static std::shared_ptr<const ShardSet> open(
      const std::string& dir, bool verify,
      const std::function<void(int64_t, int64_t)>& progress = {});

  const Manifest& manifest() const { return manifest_; }
  int64_t size() const { return total_; }
  // Tokens [pos, pos + n) of the stream into out (ids as int64). Each read reopens the shard
  // and checks it is the file opened (device, inode, size) before reading it with pread; a
  // shard changed since, or an id at or above the vocabulary size (possible unverified),
  // throws ShardReadError naming the shard.
  void read(int64_t pos, int64_t n, int64_t* out) const;

 private:
  ShardSet() = default;
  struct Opened {
    std::string path;
    uint64_t device = 0, inode = 0;
    int64_t bytes = 0;  // the file size the header and manifest imply
  };
  std::string dir_;
  Manifest manifest_;
  std::vector<Opened> files_;
  std::vector<int64_t> starts_;  // [shards + 1] first stream position of each shard
  int64_t total_ = 0;
};

}  // namespace lighthouse::train
