// Data: byte tokenizer, the readers (text file, directory tree, JSON Lines, gzip), packing
// and the split, the seeded resumable order, and the built-in corpus's long-range structure.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <regex>
#include <set>

#include "model/llama.h"
#include "train/corpus.h"
#include "train/data.h"
#include "train/helpers.h"

namespace lighthouse::train {
namespace {

using testing::scratch_dir;
using testing::test_config;
using testing::write_file;

void write_gz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  gzclose(f);
}

std::vector<std::string> documents(const std::string& source, const std::string& key = "text") {
  std::vector<std::string> out;
  for_each_document(source, key, [&](std::string_view d) { out.emplace_back(d); });
  return out;
}

TEST(Data, ByteTokenizerRoundTrip) {
  const std::string text = "h\xc3\xa9llo\n\x01\xff";
  const auto t = encode(text);
  ASSERT_EQ(t.size(), text.size());
  EXPECT_EQ(t[1], 0xc3);
  EXPECT_EQ(t.back(), 255);
  auto with_specials = t;
  with_specials.push_back(static_cast<uint16_t>(model::kEos));
  EXPECT_EQ(decode(with_specials), text);
}

TEST(Data, ReadsTextDirectoriesJsonlAndGzip) {
  const std::string dir = scratch_dir("corpus");
  std::filesystem::create_directories(dir + "/sub/deeper");
  std::filesystem::create_directories(dir + "/.hidden");
  write_file(dir + "/a.txt", "first document");
  write_gz(dir + "/sub/b.txt.gz", "second, gzipped");
  write_file(dir + "/sub/c.jsonl",
             "{\"text\": \"third\", \"url\": \"x\"}\n\n{\"text\": \"fourth \\u00e9\"}\n");
  write_gz(dir + "/sub/deeper/d.json.gz", "{\"text\": \"fifth\"}\n{\"text\": \"sixth\"}\n");
  write_file(dir + "/skipped.bin", "binary");
  write_file(dir + "/.hidden/e.txt", "hidden");
  EXPECT_EQ(documents(dir), (std::vector<std::string>{"first document", "second, gzipped", "third",
                                                      "fourth \xc3\xa9", "fifth", "sixth"}));
  EXPECT_EQ(documents(dir + "/sub/deeper/d.json.gz"), (std::vector<std::string>{"fifth", "sixth"}));
  write_gz(dir + "/k.jsonl.gz", "{\"content\": \"other key\"}\n");
  EXPECT_EQ(documents(dir + "/k.jsonl.gz", "content"), (std::vector<std::string>{"other key"}));
}

TEST(Data, ReaderErrorsNameTheKey) {
  const std::string dir = scratch_dir("bad");
  write_file(dir + "/bad.jsonl", "{\"text\": \"ok\"}\n{not json}\n");
  write_file(dir + "/nokey.jsonl", "{\"body\": \"x\"}\n");
  const auto err = [](const std::string& src) {
    try {
      documents(src);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err(dir + "/bad.jsonl").find("data.source: " + dir + "/bad.jsonl:2: invalid JSON"),
            std::string::npos);
  EXPECT_EQ(err(dir + "/nokey.jsonl").rfind("data.text_key: ", 0), 0u);
  EXPECT_EQ(err(dir + "/missing.txt").rfind("data.source: no such file", 0), 0u);
  std::filesystem::create_directories(dir + "/empty");
  EXPECT_EQ(err(dir + "/empty").rfind("data.source: no .txt", 0), 0u);
  const std::string truncated = dir + "/cut.txt.gz";
  write_gz(truncated, std::string(100000, 'x') + "tail");
  const std::string bytes = testing::read_file(truncated);
  write_file(truncated, bytes.substr(0, bytes.size() / 2));
  EXPECT_EQ(err(truncated).rfind("data.source: cannot read", 0), 0u);
}

TEST(Data, PacksDocumentsWithEosAndSplitsTheTail) {
  const std::string dir = scratch_dir("pack");
  std::string jsonl;
  for (int i = 0; i < 50; ++i)
    jsonl += "{\"text\": \"document number " + std::to_string(i) + "\"}\n";
  write_gz(dir + "/docs.jsonl.gz", jsonl);
  RunConfig c = test_config();
  c.data.source = dir + "/docs.jsonl.gz";
  c.train.context = 64;
  c.train.batch_size = 1;
  c.data.val_fraction = 0.2;
  const Dataset ds = load_dataset(c);
  EXPECT_EQ(ds.documents, 50);
  std::vector<uint16_t> all = ds.train.tokens;  // train ends where val starts (shared token)
  all.insert(all.end(), ds.val.tokens.begin() + 1, ds.val.tokens.end());
  std::string expect_text;
  for (int i = 0; i < 50; ++i) expect_text += "document number " + std::to_string(i) + "\x01";
  ASSERT_EQ(all.size(), expect_text.size());
  for (size_t i = 0; i < all.size(); ++i)
    EXPECT_EQ(all[i],
              expect_text[i] == '\x01' ? model::kEos : static_cast<unsigned char>(expect_text[i]));
  const int64_t total = static_cast<int64_t>(all.size() - 1) / 64;
  const int64_t val = (static_cast<int64_t>(ds.val.tokens.size()) - 1) / 64;
  EXPECT_EQ(val, static_cast<int64_t>(std::ceil(0.2 * total)));
  SequenceLoader loader(ds.train, 64, 1, false);
  const auto b = loader.batch_at(1, 1);  // [1, 65]: tokens 64..128 of the stream
  for (int64_t t = 0; t <= 64; ++t) EXPECT_EQ(b[0][t].item<int64_t>(), ds.train.tokens[64 + t]);
}

TEST(Data, OrderIsSeededDeterministicAndResumable) {
  RunConfig c = test_config();
  const Dataset ds = load_dataset(c);
  SequenceLoader a(ds.train, c.train.context, 5, true), b(ds.train, c.train.context, 5, true),
      other(ds.train, c.train.context, 6, true);
  const int64_t M = a.size();
  ASSERT_GT(M, 8);
  std::vector<at::Tensor> batches;
  for (int i = 0; i < 3 * M / 2; ++i) batches.push_back(a.next_batch(2));  // three epochs
  for (const auto& x : batches) EXPECT_TRUE(torch::equal(x, b.next_batch(2)));
  bool differs = false;
  for (int64_t i = 0; i < M; ++i) differs |= a.sequence_at(i) != other.sequence_at(i);
  EXPECT_TRUE(differs);
  for (int64_t e = 0; e < 3; ++e) {  // each epoch visits every sequence once, in a new order
    std::set<int64_t> seen;
    for (int64_t i = 0; i < M; ++i) seen.insert(a.sequence_at(e * M + i));
    EXPECT_EQ(static_cast<int64_t>(seen.size()), M);
  }
  EXPECT_NE(a.sequence_at(0) * M + a.sequence_at(1), a.sequence_at(M) * M + a.sequence_at(M + 1));
  SequenceLoader resumed(ds.train, c.train.context, 5, true);
  resumed.seek(2 * 7);
  EXPECT_TRUE(torch::equal(resumed.next_batch(2), batches[7]));
  EXPECT_EQ(resumed.cursor(), 16u);
}

TEST(BuiltinCorpus, DeterministicWithFactsRecalledFarAway) {
  CorpusParams p;
  p.seed = 3;
  p.doc_bytes = 4096;
  p.facts = 6;
  EXPECT_EQ(builtin_document(p, 17), builtin_document(p, 17));
  EXPECT_NE(builtin_document(p, 17), builtin_document(p, 18));
  int64_t far = 0, recalls = 0;
  for (int64_t i = 0; i < 20; ++i) {
    const std::string doc = builtin_document(p, i);
    EXPECT_GE(doc.size(), 3u * 4096 / 4 - 64);
    EXPECT_LE(doc.size(), 5u * 4096 / 4 + 512);
    const std::regex fact("fact: the code of ([a-z]+ [a-z]+) is ([0-9]{5})\\.");
    std::map<std::string, std::pair<std::string, size_t>> facts;
    for (auto it = std::sregex_iterator(doc.begin(), doc.end(), fact); it != std::sregex_iterator();
         ++it)
      facts[(*it)[1]] = {(*it)[2], static_cast<size_t>(it->position())};
    EXPECT_EQ(facts.size(), 6u);
    const std::regex recall("recall: the code of ([a-z]+ [a-z]+) is ([0-9]{5})\\.");
    std::set<std::string> recalled;
    for (auto it = std::sregex_iterator(doc.begin(), doc.end(), recall);
         it != std::sregex_iterator(); ++it) {
      ASSERT_TRUE(facts.count((*it)[1])) << (*it)[1];
      EXPECT_EQ(facts[(*it)[1]].first, (*it)[2]);  // the value stated at the top
      recalled.insert((*it)[1]);
      ++recalls;
      far += static_cast<size_t>(it->position()) - facts[(*it)[1]].second > 2048;
    }
    EXPECT_EQ(recalled.size(), 6u);  // every fact is asked for
    const std::string id = doc.substr(7, 5);
    EXPECT_NE(doc.find("end of record " + id + ".\n"), std::string::npos);
  }
  EXPECT_GT(far * 2, recalls);  // most recalls are over 2 KB after their fact
}

}  // namespace
}  // namespace lighthouse::train
