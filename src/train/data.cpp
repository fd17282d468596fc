// The byte tokenizer, token streams (in memory or a window of shards), loading data.source,
// the train/validation split and the seeded, resumable sequence order.
#include "train/data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "model/llama.h"
#include "train/corpus.h"
#include "train/rng.h"

namespace lighthouse::train {

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

int64_t TokenStream::size() const {
  return shards ? end - begin : static_cast<int64_t>(tokens.size());
}

void TokenStream::read(int64_t pos, int64_t n, int64_t* out) const {
  TORCH_CHECK(pos >= 0 && n >= 0 && pos + n <= size(), "TokenStream::read: [", pos, ", ",
              pos + n, ") is outside the stream of ", size(), " tokens");
  if (shards) return shards->read(begin + pos, n, out);
  const uint16_t* src = tokens.data() + pos;
  for (int64_t t = 0; t < n; ++t) out[t] = src[t];
}

namespace {

// The shards of dir (checksums and ids verified when data.verify).
TokenStream open_shards(const RunConfig& cfg, const std::string& dir,
                        const DataProgress& progress) {
  TokenStream stream;
  std::function<void(int64_t, int64_t)> report;
  if (progress) report = [&](int64_t done, int64_t total) { progress("verify", done, total); };
  stream.shards = ShardSet::open(dir, cfg.data.verify, report);
  stream.end = stream.shards->size();
  return stream;
}

// True when dir holds a data.cache of data.source as its files are now.
bool cache_is_current(const RunConfig& cfg, const std::string& dir) {
  return is_shard_dataset(dir) &&
         read_manifest(dir).source == source_signature(cfg.data.source, cfg.data.text_key);
}

// data.source converted once into byte-token shards under data.cache; reused while the
// source's files (paths, sizes, mtimes) and text_key are unchanged.
TokenStream cached_stream(const RunConfig& cfg, const std::string& dir,
                          const DataProgress& progress) {
  if (!cache_is_current(cfg, dir)) {
    std::function<void(int64_t, int64_t)> report;
    if (progress) report = [&](int64_t done, int64_t total) { progress("tokenize", done, total); };
    tokenize_bytes({cfg.data.source}, cfg.data.text_key, dir, int64_t{1} << 28, report,
                   cfg.data.max_document_bytes);
  }
  return open_shards(cfg, dir, progress);
}

}  // namespace

TokenStream load_stream(const RunConfig& cfg, int64_t* documents, std::string* what,
                        int64_t* vocab_size, const DataProgress& progress, CacheUse cache) {
  const bool cached = !cache_dir(cfg).empty() &&
                      (cache == CacheUse::Write || cache_is_current(cfg, cache_dir(cfg)));
  if (cfg.data.source != "builtin" && (is_shard_dataset(cfg.data.source) || cached)) {
    const bool shards = is_shard_dataset(cfg.data.source);
    TokenStream stream = shards ? open_shards(cfg, cfg.data.source, progress)
                                : cached_stream(cfg, cache_dir(cfg), progress);
    const Manifest& m = stream.shards->manifest();
    if (documents) *documents = m.documents();
    if (vocab_size) *vocab_size = m.vocab_size;
    if (what)
      *what = shards ? cfg.data.source + " (" + std::to_string(m.shards.size()) + " shards)"
                     : cfg.data.source + " (cached in " + cache_dir(cfg) + ")";
    return stream;
  }
  TokenStream stream;
  std::vector<uint16_t>& all = stream.tokens;
  int64_t docs = 0;
  // Documents arrive in pieces straight into the stream: 2 bytes a token, no copy held.
  const auto bytes = [&](std::string_view piece) {
    all.insert(all.end(), reinterpret_cast<const unsigned char*>(piece.data()),
               reinterpret_cast<const unsigned char*>(piece.data()) + piece.size());
  };
  const auto end = [&] {
    all.push_back(static_cast<uint16_t>(model::kEos));
    ++docs;
  };
  const auto add = [&](std::string_view doc) {
    bytes(doc);
    end();
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
    stream_source(cfg.data.source, cfg.data.text_key, DocumentSink{bytes, end},
                  cfg.data.max_document_bytes);
    if (what) *what = cfg.data.source;
  }
  if (documents) *documents = docs;
  if (vocab_size) *vocab_size = model::kVocab;
  return stream;
}

Dataset load_dataset(const RunConfig& cfg, const DataProgress& progress, CacheUse cache) {
  const int64_t N = cfg.train.context;
  Dataset ds;
  std::string what;
  TokenStream all = load_stream(cfg, &ds.documents, &what, &ds.vocab_size, progress, cache);
  if (all.shards) ds.eos_id = all.shards->manifest().eos_id;
  const int64_t total = all.size();

  // Split at a sequence boundary: the last ceil(val_fraction * M) sequences (or
  // ceil(val_tokens / N)) are validation.
  const int64_t total_seq = total > 1 ? (total - 1) / N : 0;
  // data.val_tokens, when set, fixes the held-out tokens whatever the corpus size.
  const int64_t val_seq =
      cfg.data.val_tokens > 0
          ? cfg.data.val_tokens / N + (cfg.data.val_tokens % N != 0)
          : cfg.data.val_fraction > 0
          ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(cfg.data.val_fraction * total_seq)))
          : 0;
  const int64_t train_seq = total_seq - val_seq;
  const int64_t need = cfg.train.batch_size;
  if (train_seq < need)
    throw ConfigError("data.source: " + what + " has " + std::to_string(total) +
                      " tokens, too few for " + std::to_string(need) + " training sequence(s) of " +
                      std::to_string(N) + " plus the validation split of " + std::to_string(val_seq) +
                      (cfg.data.val_tokens > 0 ? " (data.val_tokens)" : " (data.val_fraction)"));
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
  const int64_t cut = train_seq * N;
  if (all.shards) {  // windows of the mapped stream; the token at `cut` is shared
    ds.train.shards = ds.val.shards = all.shards;
    ds.train.end = cut + 1;
    if (val_seq > 0) ds.val.begin = cut, ds.val.end = total;
  } else {
    ds.train.tokens.assign(all.tokens.begin(), all.tokens.begin() + cut + 1);
    if (val_seq > 0) ds.val.tokens.assign(all.tokens.begin() + cut, all.tokens.end());
  }

  std::ostringstream d;
  d << what << ": " << ds.documents << " documents, " << total << " tokens -> " << train_seq
    << " train + " << val_seq << " validation sequences of " << N;
  ds.description = d.str();
  return ds;
}

SequenceLoader::SequenceLoader(const TokenStream& stream, int64_t context, uint64_t seed,
                               bool shuffle)
    : stream_(&stream),
      context_(context),
      num_seq_(stream.size() > 1 ? (stream.size() - 1) / context : 0),
      seed_(seed),
      shuffle_(shuffle) {
  TORCH_CHECK(num_seq_ > 0, "token stream of ", stream.size(),
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
