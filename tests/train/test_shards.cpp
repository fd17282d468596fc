// Token shards: round trip (uint16 and uint32 ids, reads across shard boundaries), corrupted,
// truncated and mis-headed shards rejected with the file named; data.source = shards giving
// bitwise the batches, order, resume and split of the same text held in memory; data.cache;
// the memory bound of streaming a corpus much larger than it; vocabulary mismatches; and
// model.init from an export (step-0 loss equal to the exported model's, fp32).
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "model/export.h"
#include "train/data.h"
#include "train/helpers.h"
#include "train/loss.h"
#include "train/trainer.h"

namespace lighthouse::train {
namespace {

using testing::read_file;
using testing::scratch_dir;
using testing::test_config;
using testing::write_file;

std::vector<uint32_t> random_ids(int64_t n, int64_t vocab, int64_t eos, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = static_cast<uint32_t>(rng() % static_cast<uint64_t>(vocab));
  for (size_t i = 0; i < ids.size(); i += 97) ids[i] = static_cast<uint32_t>(eos);
  return ids;
}

// Writes ids as shards of shard_tokens and returns the directory.
std::string write_shards(const std::string& dir, const std::vector<uint32_t>& ids, int64_t vocab,
                         int64_t eos, int64_t shard_tokens) {
  ShardWriter w(dir, vocab, eos, "test", shard_tokens);
  w.append(ids.data(), static_cast<int64_t>(ids.size()));
  w.finish();
  return dir;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

void flip_byte(const std::string& path, int64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x5a));
}

TEST(Shards, RoundTripUint16AndUint32AcrossShardBoundaries) {
  for (const int64_t vocab : {int64_t{1000}, int64_t{128256}}) {
    const std::string dir = scratch_dir("v" + std::to_string(vocab));
    const auto ids = random_ids(10007, vocab, vocab - 1, static_cast<uint64_t>(vocab));
    write_shards(dir, ids, vocab, vocab - 1, 1000);
    const auto set = ShardSet::open(dir, /*verify=*/true);
    const Manifest& m = set->manifest();
    EXPECT_EQ(m.token_bytes, vocab <= 65536 ? 2u : 4u);
    EXPECT_EQ(m.shards.size(), 11u);
    EXPECT_EQ(set->size(), 10007);
    EXPECT_EQ(m.documents(), static_cast<int64_t>(std::count(ids.begin(), ids.end(), vocab - 1)));
    std::vector<int64_t> out(ids.size());
    set->read(0, set->size(), out.data());
    for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(out[i], ids[i]) << i;
    std::vector<int64_t> span(2500);  // starts inside shard 0, crosses 1 and 2
    set->read(990, 2500, span.data());
    for (int64_t i = 0; i < 2500; ++i) ASSERT_EQ(span[i], ids[990 + i]);
    EXPECT_NE(error_of([&] { set->read(10000, 8, span.data()); }), "");
  }
}

TEST(Shards, CorruptedTruncatedAndBadHeadersAreRejectedNamingTheFile) {
  const std::string dir = scratch_dir("corrupt");
  const auto ids = random_ids(3000, 500, 7, 1);
  write_shards(dir, ids, 500, 7, 1000);
  const std::string s1 = dir + "/shard-000001.bin";
  EXPECT_EQ(error_of([&] { ShardSet::open(dir, true); }), "");

  flip_byte(s1, kShardHeaderBytes + 101);  // a token id
  std::string e = error_of([&] { ShardSet::open(dir, true); });
  EXPECT_NE(e.find("shard-000001.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("checksum"), std::string::npos) << e;
  EXPECT_EQ(error_of([&] { ShardSet::open(dir, false); }), "");  // data.verify = false skips it
  flip_byte(s1, kShardHeaderBytes + 101);                          // repaired

  flip_byte(s1, 0);  // the magic
  e = error_of([&] { ShardSet::open(dir, false); });
  EXPECT_NE(e.find("shard-000001.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("LHTOKENS"), std::string::npos) << e;
  flip_byte(s1, 0);

  flip_byte(s1, 16);  // vocab_size in the header
  e = error_of([&] { ShardSet::open(dir, false); });
  EXPECT_NE(e.find("shard-000001.bin: header vocab_size"), std::string::npos) << e;
  flip_byte(s1, 16);

  flip_byte(s1, 8);  // version
  e = error_of([&] { ShardSet::open(dir, false); });
  EXPECT_NE(e.find("shard-000001.bin: shard version"), std::string::npos) << e;
  flip_byte(s1, 8);

  const std::string full = read_file(s1);
  write_file(s1, full.substr(0, full.size() - 2));  // truncated
  e = error_of([&] { ShardSet::open(dir, false); });
  EXPECT_NE(e.find("shard-000001.bin: file size"), std::string::npos) << e;
  write_file(s1, full);

  write_file(dir + "/" + kManifestName, "{\"format\": \"lighthouse-tokens\"}");
  e = error_of([&] { ShardSet::open(dir, false); });
  EXPECT_NE(e.find("manifest.json"), std::string::npos) << e;
  EXPECT_NE(e.find("version"), std::string::npos) << e;
}

TEST(Shards, IdsAtOrAboveTheVocabularyAreRejected) {
  const std::string dir = scratch_dir("ids");
  ShardWriter w(dir, 300, 5, "test", 100);
  const uint32_t bad = 300;
  EXPECT_NE(error_of([&] { w.append(&bad, 1); }).find("vocab_size = 300"), std::string::npos);
}

// The byte-tokenized text corpus of the test config as a file, and the same as shards.
std::pair<std::string, std::string> text_and_shards(const std::string& dir) {
  RunConfig c = test_config();
  const TokenStream mem = load_stream(c);
  std::string text;  // documents of the built-in corpus, one JSON line each
  const std::string file = dir + "/corpus.jsonl";
  {
    std::ofstream out(file);
    std::string doc;
    for (const uint16_t t : mem.tokens) {
      if (t == model::kEos) {
        out << nlohmann::json{{"text", doc}}.dump() << "\n";
        doc.clear();
      } else {
        doc += static_cast<char>(t);
      }
    }
  }
  tokenize_bytes({file}, "text", dir + "/shards", /*shard_tokens=*/1500);
  return {file, dir + "/shards"};
}

TEST(Shards, OrderResumeAndSplitMatchTheInMemoryStreamBitwise) {
  const std::string dir = scratch_dir("order");
  const auto [file, shard_dir] = text_and_shards(dir);
  RunConfig mem = test_config(), sh = test_config();
  mem.data.source = file;
  sh.data.source = shard_dir;
  const Dataset a = load_dataset(mem), b = load_dataset(sh);
  ASSERT_GT(read_manifest(shard_dir).shards.size(), 5u);  // sequences of 257 span shards
  EXPECT_EQ(a.train.size(), b.train.size());
  EXPECT_EQ(a.val.size(), b.val.size());
  EXPECT_EQ(a.documents, b.documents);
  EXPECT_EQ(b.vocab_size, model::kVocab);
  const int64_t N = sh.train.context;
  SequenceLoader la(a.train, N, 11, true), lb(b.train, N, 11, true);
  std::vector<at::Tensor> batches;
  for (int i = 0; i < la.size(); ++i) {  // two epochs
    batches.push_back(lb.next_batch(2));
    ASSERT_TRUE(torch::equal(la.next_batch(2), batches.back())) << i;
  }
  SequenceLoader resumed(b.train, N, 11, true);
  resumed.seek(2 * 5);
  EXPECT_TRUE(torch::equal(resumed.next_batch(2), batches[5]));
  SequenceLoader va(a.val, N, 0, false), vb(b.val, N, 0, false);
  EXPECT_TRUE(torch::equal(va.batch_at(0, 1), vb.batch_at(0, 1)));
}

TEST(Shards, DataCacheConvertsTextOnceAndMatchesInMemory) {
  const std::string dir = scratch_dir("cache");
  const auto [file, shard_dir] = text_and_shards(dir);
  RunConfig mem = test_config(), cached = test_config();
  mem.data.source = cached.data.source = file;
  cached.data.cache = dir + "/cache";
  const Dataset a = load_dataset(mem), b = load_dataset(cached);
  ASSERT_TRUE(b.train.shards);
  SequenceLoader la(a.train, 256, 3, true), lb(b.train, 256, 3, true);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(torch::equal(la.next_batch(2), lb.next_batch(2)));
  const std::string manifest = read_file(dir + "/cache/manifest.json");
  load_dataset(cached);  // reused: nothing rewritten
  EXPECT_EQ(read_file(dir + "/cache/manifest.json"), manifest);
  { std::ofstream(file, std::ios::app) << "{\"text\": \"one more document\"}\n"; }
  const Dataset c = load_dataset(cached);  // the source changed: converted again
  EXPECT_EQ(c.documents, a.documents + 1);
}

// Anonymous resident memory (heap, not the mapped or cached file pages), bytes.
int64_t rss_anon() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("RssAnon:", 0) == 0) return std::stoll(line.substr(8)) * 1024;
  return -1;
}

TEST(Shards, StreamingACorpusSixteenTimesTheMemoryBoundKeepsMemoryFlat) {
  const int64_t bound = int64_t{8} << 20;  // docs/training.md: the bound of anonymous memory
  const std::string dir = scratch_dir("memory");
  const std::string file = dir + "/big.jsonl";
  {
    std::ofstream out(file);
    std::mt19937_64 rng(5);
    std::string doc(4000, 'a');
    for (int64_t bytes = 0; bytes < 16 * bound / 2;) {  // 64 MiB of text = 128 MiB of tokens
      for (auto& ch : doc) ch = static_cast<char>('a' + rng() % 26);
      out << "{\"text\": \"" << doc << "\"}\n";
      bytes += static_cast<int64_t>(doc.size());
    }
  }
  RunConfig c = test_config();
  c.data.source = file;
  c.data.cache = dir + "/cache";
  const int64_t before = rss_anon();
  ASSERT_GT(before, 0);
  int64_t peak = before;
  tokenize_bytes({file}, "text", c.data.cache, int64_t{1} << 28,
                 [&](int64_t, int64_t) { peak = std::max(peak, rss_anon()); });
  const Dataset ds = load_dataset(c);  // reuses the conversion, maps and verifies it
  EXPECT_GE(read_manifest(c.data.cache).tokens() * 2, 16 * bound);
  SequenceLoader loader(ds.train, 4096, 1, true);
  for (int64_t i = 0; i < loader.size(); i += 8) {  // one epoch in batches of 8
    loader.next_batch(8);
    peak = std::max(peak, rss_anon());
  }
  RecordProperty("rss_anon_growth_bytes", std::to_string(peak - before));
  EXPECT_LT(peak - before, bound) << "anonymous memory grew by " << (peak - before) << " bytes";
}

TEST(Shards, VocabularyComesFromTheHeaderAndMismatchesAreErrors) {
  const std::string dir = scratch_dir("vocab");
  write_shards(dir + "/a", random_ids(20000, 300, 299, 2), 300, 299, 4096);
  Launch l;
  l.overrides = {{"run.dir", dir + "/run"}, {"data.source", dir + "/a"},
                 {"train.attention", "dense"}, {"train.stage1_steps", "0"},
                 {"train.steps", "2"}, {"schedule.warmup_steps", "0"}, {"run.threads", "1"},
                 {"train.context", "256"}, {"model.d_model", "32"}, {"model.ffn_hidden", "64"},
                 {"checkpoint.every", "1"}, {"val.every", "0"}};
  l.config_file = "";
  {
    auto s = open_session(l);
    EXPECT_EQ(s->cfg.model.vocab, 300);
    EXPECT_EQ(s->model->config().vocab, 300);
    const auto st = train_step(*s);
    EXPECT_TRUE(std::isfinite(st.loss));
    EXPECT_NEAR(st.loss, std::log(300.0), 0.5);
    save_checkpoint(*s);
  }
  Launch small = l;
  small.overrides.push_back({"model.vocab_size", "280"});
  std::string e = error_of([&] { open_session(small); });
  EXPECT_NE(e.find("model.vocab_size: model.vocab_size has vocab_size 280, below data.source"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("300"), std::string::npos) << e;
  // The shards re-tokenized with another vocabulary under the same name: resuming refuses.
  write_shards(dir + "/a", random_ids(20000, 310, 309, 2), 310, 309, 4096);
  Launch resume;
  resume.overrides = {{"run.resume", dir + "/run"}};
  e = error_of([&] { open_session(resume); });
  EXPECT_NE(e.find("model.vocab_size: the checkpoint"), std::string::npos) << e;
  EXPECT_NE(e.find("300"), std::string::npos) << e;
  EXPECT_NE(e.find("310"), std::string::npos) << e;
}

TEST(Shards, ModelInitFromAnExportReproducesItsLossAtStepZero) {
  const std::string dir = scratch_dir("init");
  Launch l;
  l.config_file = "";
  l.overrides = {{"run.dir", dir + "/a"}, {"run.threads", "1"}, {"train.attention", "dense"},
                 {"train.stage1_steps", "0"}, {"model.d_model", "32"}, {"model.n_layers", "2"},
                 {"model.n_heads", "2"}, {"model.n_kv_heads", "1"}, {"model.head_dim", "16"},
                 {"model.ffn_hidden", "48"}, {"model.dense_layers", "[]"},
                 {"model.rope_theta", "50000"}, {"train.context", "128"}, {"val.every", "0"},
                 {"data.builtin_docs", "30"}, {"data.builtin_doc_bytes", "300"}};
  auto a = open_session(l);
  for (int i = 0; i < 3; ++i) train_step(*a);  // trained weights, not the init
  model::export_hf(a->model, dir + "/hf", at::kFloat);

  Launch li;
  li.config_file = "";
  li.overrides = {{"run.dir", dir + "/b"}, {"run.threads", "1"}, {"train.attention", "dense"},
                  {"train.stage1_steps", "0"}, {"model.dense_layers", "[]"},
                  {"model.init", dir + "/hf"}, {"train.context", "128"}, {"val.every", "0"},
                  {"data.builtin_docs", "30"}, {"data.builtin_doc_bytes", "300"}};
  auto b = open_session(li);
  EXPECT_EQ(b->cfg.model.d_model, 32);
  EXPECT_EQ(b->cfg.model.ffn_hidden, 48);
  EXPECT_EQ(b->cfg.model.rope_theta, 50000.0);
  const at::Tensor batch = b->train_loader->next_batch(b->cfg.train.batch_size);  // [B, N + 1]
  b->train_loader->seek(0);
  torch::NoGradGuard no_grad;
  const double want = next_token_loss(a->model, batch, a->device, false).item<double>();
  const double got = next_token_loss(b->model, batch, b->device, false).item<double>();
  EXPECT_LE(std::abs(got - want), 1e-6 * std::abs(want)) << got << " vs " << want;
  {
    torch::GradMode::set_enabled(true);
    const StepStats st = train_step(*b);  // the step-0 loss of the new run
    EXPECT_LE(std::abs(st.loss - want), 1e-6 * std::abs(want)) << st.loss << " vs " << want;
  }

  // A missing tensor, a shape key that disagrees, and an unsupported field: named.
  auto tensors = model::load_safetensors(dir + "/hf/model.safetensors");
  tensors.erase("model.layers.1.mlp.up_proj.weight");
  model::save_safetensors(dir + "/hf/model.safetensors", {tensors.begin(), tensors.end()});
  std::string e = error_of([&] { open_session(li); });
  EXPECT_NE(e.find("model.init: " + dir + "/hf/model.safetensors has no tensor "
                   "model.layers.1.mlp.up_proj.weight"),
            std::string::npos)
      << e;
  Launch wrong = li;
  wrong.overrides.push_back({"model.d_model", "64"});
  e = error_of([&] { open_session(wrong); });
  EXPECT_EQ(e.rfind("model.d_model: 64 differs from 32", 0), 0u) << e;
  auto cfg = nlohmann::json::parse(read_file(dir + "/hf/config.json"));
  cfg["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 5e4}};
  write_file(dir + "/hf/config.json", cfg.dump());
  e = error_of([&] { open_session(li); });
  EXPECT_NE(e.find("rope_parameters.rope_type\" \"yarn\" is not supported"), std::string::npos)
      << e;
}

}  // namespace
}  // namespace lighthouse::train
