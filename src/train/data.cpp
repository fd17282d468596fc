// Document readers (plain and gzip files through zlib's gzread, with the gzip magic checked for
// .gz names; JSON Lines), the byte tokenizer, the train/validation split and the seeded,
// resumable sequence order.
#include "train/data.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/llama.h"
#include "train/corpus.h"
#include "train/rng.h"

namespace lighthouse::train {
namespace fs = std::filesystem;
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string strip_gz(const std::string& name) {
  return ends_with(name, ".gz") ? name.substr(0, name.size() - 3) : name;
}

bool is_jsonl(const std::string& path) {
  const std::string n = strip_gz(path);
  return ends_with(n, ".jsonl") || ends_with(n, ".json");
}

bool is_text(const std::string& path) {
  const std::string n = strip_gz(path);
  return ends_with(n, ".txt") || ends_with(n, ".text") || ends_with(n, ".md");
}

// A .gz file must start with the gzip magic bytes 1f 8b: gzread would pass anything else
// through as plain bytes.
void check_gzip_magic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw ConfigError("data.source: cannot open " + path);
  unsigned char magic[2] = {0, 0};
  const size_t n = std::fread(magic, 1, 2, f);
  std::fclose(f);
  if (n != 2 || magic[0] != 0x1f || magic[1] != 0x8b)
    throw ConfigError("data.source: " + path +
                      " is not gzip data (the name ends in .gz, the file does not start with "
                      "the gzip magic bytes 1f 8b)");
}

// The whole (decompressed) content of a file; gzread passes plain files through unchanged.
std::string read_file(const std::string& path) {
  if (ends_with(path, ".gz")) check_gzip_magic(path);
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw ConfigError("data.source: cannot open " + path);
  gzbuffer(f, 1 << 18);
  std::string out;
  std::vector<char> buf(1 << 18);
  int n;
  while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0)
    out.append(buf.data(), n);
  int err = Z_OK;
  const std::string msg = gzerror(f, &err);
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
    throw ConfigError("data.source: cannot read " + path + ": " + msg);
  return out;
}

void read_jsonl(const std::string& path, const std::string& key,
                const std::function<void(std::string_view)>& fn) {
  std::istringstream in(read_file(path));
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw ConfigError("data.source: " + path + ":" + std::to_string(lineno) + ": invalid JSON (" +
                        std::string(e.what()) + ")");
    }
    if (!j.is_object() || !j.contains(key) || !j[key].is_string())
      throw ConfigError("data.text_key: " + path + ":" + std::to_string(lineno) +
                        ": no string field \"" + key + "\"");
    fn(j[key].get_ref<const std::string&>());
  }
}

void read_one(const std::string& path, const std::string& key,
              const std::function<void(std::string_view)>& fn) {
  if (is_jsonl(path)) {
    read_jsonl(path, key, fn);
  } else {
    fn(read_file(path));
  }
}

}  // namespace

std::vector<uint16_t> encode(std::string_view text) {
  std::vector<uint16_t> out(text.size());
  for (size_t i = 0; i < text.size(); ++i) out[i] = static_cast<unsigned char>(text[i]);
  return out;
}

std::string decode(const std::vector<uint16_t>& tokens) {
  std::string out;
  for (const uint16_t t : tokens)
    if (t < 256) out += static_cast<char>(t);
  return out;
}

void for_each_document(const std::string& source, const std::string& text_key,
                       const std::function<void(std::string_view)>& fn) {
  std::error_code ec;
  if (fs::is_directory(source, ec)) {
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(source, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && name[0] == '.') {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      const std::string p = it->path().string();
      if (it->is_regular_file() && (is_jsonl(p) || is_text(p))) files.push_back(p);
    }
    if (ec) throw ConfigError("data.source: cannot list " + source + ": " + ec.message());
    if (files.empty())
      throw ConfigError("data.source: no .txt/.text/.md/.jsonl/.json(.gz) files under " + source);
    std::sort(files.begin(), files.end());
    for (const auto& f : files) read_one(f, text_key, fn);
  } else if (fs::is_regular_file(source, ec)) {
    read_one(source, text_key, fn);
  } else {
    throw ConfigError("data.source: no such file or directory: " + source);
  }
}

TokenStream load_stream(const RunConfig& cfg, int64_t* documents, std::string* what) {
  TokenStream stream;
  std::vector<uint16_t>& all = stream.tokens;
  int64_t docs = 0;
  auto add = [&](std::string_view doc) {
    all.insert(all.end(), reinterpret_cast<const unsigned char*>(doc.data()),
               reinterpret_cast<const unsigned char*>(doc.data()) + doc.size());
    all.push_back(static_cast<uint16_t>(model::kEos));
    ++docs;
  };
  if (cfg.data.source == "builtin") {
    CorpusParams p;
    p.seed = static_cast<uint64_t>(cfg.run.seed);
    p.doc_bytes = cfg.data.builtin_doc_bytes > 0 ? cfg.data.builtin_doc_bytes : cfg.train.context;
    p.facts = cfg.data.builtin_facts;
    all.reserve(static_cast<size_t>(cfg.data.builtin_docs * (p.doc_bytes * 5 / 4 + 2)));
    for (int64_t i = 0; i < cfg.data.builtin_docs; ++i) add(builtin_document(p, i));
    if (what) *what = "built-in corpus";
  } else {
    for_each_document(cfg.data.source, cfg.data.text_key, add);
    if (what) *what = cfg.data.source;
  }
  if (documents) *documents = docs;
  return stream;
}

Dataset load_dataset(const RunConfig& cfg) {
  const int64_t N = cfg.train.context;
  Dataset ds;
  std::string what;
  const std::vector<uint16_t> all = load_stream(cfg, &ds.documents, &what).tokens;

  // Split at a sequence boundary: the last ceil(val_fraction * M) sequences are validation.
  const int64_t total_seq = all.size() > 1 ? static_cast<int64_t>(all.size() - 1) / N : 0;
  const int64_t val_seq =
      cfg.data.val_fraction > 0
          ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(cfg.data.val_fraction * total_seq)))
          : 0;
  const int64_t train_seq = total_seq - val_seq;
  const int64_t need = cfg.train.batch_size;
  if (train_seq < need)
    throw ConfigError("data.source: " + what + " has " + std::to_string(all.size()) +
                      " tokens, too few for " + std::to_string(need) + " training sequence(s) of " +
                      std::to_string(N) + " plus the validation split");
  const int64_t val_need = cfg.val.batches * cfg.train.batch_size;
  if (cfg.val.every > 0 && val_seq > 0 && val_need > val_seq)
    throw ConfigError(
        "val.batches: " + std::to_string(cfg.val.batches) +
        " batches of train.batch_size = " + std::to_string(cfg.train.batch_size) + " need " +
        std::to_string(val_need) + " validation sequences, the split (data.val_fraction = " +
        std::to_string(cfg.data.val_fraction) + ") holds " + std::to_string(val_seq) +
        (val_seq >= cfg.train.batch_size
             ? "; the maximum is val.batches = " + std::to_string(val_seq / cfg.train.batch_size)
             : ", less than one batch; raise data.val_fraction or lower train.batch_size"));
  const size_t cut = static_cast<size_t>(train_seq * N);
  ds.train.tokens.assign(all.begin(), all.begin() + cut + 1);
  if (val_seq > 0) ds.val.tokens.assign(all.begin() + cut, all.end());

  std::ostringstream d;
  d << what << ": " << ds.documents << " documents, " << all.size() << " tokens -> " << train_seq
    << " train + " << val_seq << " validation sequences of " << N;
  ds.description = d.str();
  return ds;
}

SequenceLoader::SequenceLoader(const TokenStream& stream, int64_t context, uint64_t seed,
                               bool shuffle)
    : stream_(&stream),
      context_(context),
      num_seq_(stream.tokens.size() > 1 ? static_cast<int64_t>(stream.tokens.size() - 1) / context
                                        : 0),
      seed_(seed),
      shuffle_(shuffle) {
  TORCH_CHECK(num_seq_ > 0, "token stream of ", stream.tokens.size(),
              " tokens holds no sequence of ", context, " + 1");
}

int64_t SequenceLoader::sequence_at(uint64_t cursor) {
  const int64_t epoch = static_cast<int64_t>(cursor / num_seq_);
  const int64_t pos = static_cast<int64_t>(cursor % num_seq_);
  if (!shuffle_) return pos;
  if (epoch != perm_epoch_) {
    perm_ = permutation(num_seq_, mix_seed(seed_, static_cast<uint64_t>(epoch), 0xda7a));
    perm_epoch_ = epoch;
  }
  return perm_[pos];
}

void SequenceLoader::copy_sequence(int64_t index, int64_t* out) const {
  const uint16_t* src = stream_->tokens.data() + index * context_;
  for (int64_t t = 0; t <= context_; ++t) out[t] = src[t];
}

at::Tensor SequenceLoader::next_batch(int64_t batch) {
  auto out = torch::empty({batch, context_ + 1}, torch::kLong);  // [B, N + 1]
  for (int64_t b = 0; b < batch; ++b)
    copy_sequence(sequence_at(cursor_++), out.data_ptr<int64_t>() + b * (context_ + 1));
  return out;
}

at::Tensor SequenceLoader::next_batch(int64_t batch, int64_t rank, int64_t ranks) {
  TORCH_CHECK(rank >= 0 && rank < ranks, "rank must be in [0, ", ranks, "), got ", rank);
  cursor_ += static_cast<uint64_t>(rank * batch);
  auto out = next_batch(batch);  // [B, N + 1]
  cursor_ += static_cast<uint64_t>((ranks - rank - 1) * batch);
  return out;
}

at::Tensor SequenceLoader::batch_at(int64_t first, int64_t batch) const {
  auto out = torch::empty({batch, context_ + 1}, torch::kLong);  // [B, N + 1]
  for (int64_t b = 0; b < batch; ++b)
    copy_sequence((first + b) % num_seq_, out.data_ptr<int64_t>() + b * (context_ + 1));
  return out;
}

}  // namespace lighthouse::train
