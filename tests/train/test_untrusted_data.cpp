// Data the tools did not write (docs/trust.md): a shard header whose token count wraps the
// size check around, a shard truncated while a run reads it (an error naming it and, in the
// trainer, a checkpoint of the last whole step; never SIGBUS), ids past the vocabulary that
// data.verify = false let through (an error naming the shard and the key), and a data.cache
// that eval only reads (a config from someone else's model names it).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <fstream>

#include "train/checkpoint.h"
#include "train/data.h"
#include "train/helpers.h"
#include "train/trainer.h"

namespace lighthouse::train {
namespace {

using testing::read_file;
using testing::scratch_dir;
using testing::test_config;
using testing::write_file;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// `n` ids 0, 1, 2, ... (EOS every 50th) as one shard of vocabulary `vocab`.
std::string write_one_shard(const std::string& dir, int64_t n, int64_t vocab) {
  ShardWriter w(dir, vocab, 0, "test");
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t id = static_cast<uint32_t>(i % 50 == 49 ? 0 : 1 + i % 200);
    w.append(&id, 1);
  }
  w.finish();
  return dir + "/shard-000000.bin";
}

void put_u64(const std::string& path, int64_t offset, uint64_t v) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset);
  f.write(reinterpret_cast<const char*>(&v), 8);
}

TEST(UntrustedData, TokenCountThatWrapsTheSizeCheckIsRefused) {
  // 64 + 4 * (2^62 + 5000) wraps to 64 + 4 * 5000, the real size of a 5000-token uint32 shard.
  const std::string dir = scratch_dir("wrap");
  const std::string shard = write_one_shard(dir, 5000, 100000);
  const uint64_t lie = (uint64_t{1} << 62) + 5000;
  put_u64(shard, 24, lie);
  std::string manifest = read_file(dir + "/manifest.json");
  for (const std::string key : {"\"tokens\": 5000"}) {
    size_t at;
    while ((at = manifest.find(key)) != std::string::npos)
      manifest.replace(at, key.size(), "\"tokens\": " + std::to_string(lie));
  }
  write_file(dir + "/manifest.json", manifest);
  for (const bool verify : {false, true}) {
    const std::string e = error_of([&] { ShardSet::open(dir, verify); });
    EXPECT_NE(e.find("data.source: "), std::string::npos) << e;
    EXPECT_NE(e.find("manifest.json"), std::string::npos) << e;
    EXPECT_NE(e.find("tokens " + std::to_string(lie)), std::string::npos) << e;
  }
}

TEST(UntrustedData, ShardTruncatedOrReplacedWhileOpenIsAnErrorNamingIt) {
  const std::string dir = scratch_dir("trunc");
  const std::string shard = write_one_shard(dir, 4000, 300);
  const auto set = ShardSet::open(dir, /*verify=*/true);
  std::vector<int64_t> out(100);
  set->read(3000, 100, out.data());
  EXPECT_EQ(out[0], 1 + 3000 % 200);
  ASSERT_EQ(::truncate(shard.c_str(), 64), 0);
  std::string e = error_of([&] { set->read(3000, 100, out.data()); });  // SIGBUS when mapped
  EXPECT_NE(e.find("shard-000000.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated or rewritten"), std::string::npos) << e;

  const std::string other = scratch_dir("other");
  write_one_shard(other, 4000, 300);  // same size, another file renamed over it
  ASSERT_EQ(std::rename((other + "/shard-000000.bin").c_str(), shard.c_str()), 0);
  e = error_of([&] { set->read(0, 100, out.data()); });
  EXPECT_NE(e.find("is another file"), std::string::npos) << e;
}

TEST(UntrustedData, IdsPastTheVocabularyUnverifiedNameTheShardAndKey) {
  const std::string dir = scratch_dir("ids");
  const std::string shard = write_one_shard(dir, 1000, 300);
  {  // id 7 of the stream becomes 0xffff (the CRC no longer matches: only verify notices)
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kShardHeaderBytes + 2 * 7);
    f.write("\xff\xff", 2);
  }
  const auto set = ShardSet::open(dir, /*verify=*/false);
  std::vector<int64_t> out(20);
  set->read(0, 7, out.data());  // the ids before it read fine
  const std::string e = error_of([&] { set->read(0, 20, out.data()); });
  EXPECT_NE(e.find("shard-000000.bin: token 7 is 65535"), std::string::npos) << e;
  EXPECT_NE(e.find("data.verify"), std::string::npos) << e;
}

TEST(UntrustedData, TrainerCheckpointsAndStopsWhenAShardIsTruncatedMidRun) {
  const std::string dir = scratch_dir("train");
  const std::string shard = write_one_shard(dir + "/data", 20000, 259);
  write_file(dir + "/t.toml", testing::kTestToml);
  Launch launch;
  launch.config_file = dir + "/t.toml";
  launch.overrides = {{"run.dir", dir + "/run"},
                      {"data.source", dir + "/data"},
                      {"checkpoint.every", "100"},
                      {"train.steps", "8"}};
  auto session = open_session(launch);
  ConsoleHooks hooks;
  hooks.line = [&](const std::string& line) {  // after step 3 the shard loses its ids
    if (line.rfind("step      3/", 0) == 0) ASSERT_EQ(::truncate(shard.c_str(), 64), 0);
  };
  const std::string e = error_of([&] { train(*session, hooks); });
  EXPECT_NE(e.find("shard-000000.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("stopped after step 3"), std::string::npos) << e;
  EXPECT_NE(e.find("run.resume"), std::string::npos) << e;
  EXPECT_TRUE(std::ifstream(checkpoint_path(dir + "/run", 3)).good()) << e;
}

TEST(UntrustedData, ReadOnlyCacheUseNeverWritesTheCacheFolder) {
  const std::string dir = scratch_dir("cache");
  write_file(dir + "/a.txt", std::string(3000, 'a'));
  RunConfig c = test_config();
  c.data.source = dir + "/a.txt";
  c.data.cache = dir + "/cache";
  const TokenStream mem = load_stream(c, nullptr, nullptr, nullptr, {}, CacheUse::ReadOnly);
  EXPECT_FALSE(mem.shards);  // held in memory
  EXPECT_EQ(mem.size(), 3001);
  EXPECT_FALSE(std::ifstream(dir + "/cache/manifest.json").good());
  EXPECT_FALSE(is_shard_dataset(dir + "/cache"));
  load_stream(c);  // training writes it
  ASSERT_TRUE(is_shard_dataset(dir + "/cache"));
  const TokenStream cached = load_stream(c, nullptr, nullptr, nullptr, {}, CacheUse::ReadOnly);
  EXPECT_TRUE(cached.shards);  // a current cache is read
  write_file(dir + "/a.txt", std::string(2000, 'b'));  // stale now: not rewritten
  const std::string manifest = read_file(dir + "/cache/manifest.json");
  const TokenStream stale = load_stream(c, nullptr, nullptr, nullptr, {}, CacheUse::ReadOnly);
  EXPECT_FALSE(stale.shards);
  EXPECT_EQ(stale.size(), 2001);
  EXPECT_EQ(read_file(dir + "/cache/manifest.json"), manifest);
}

TEST(UntrustedData, OneJsonLinesDocumentPastTheBoundIsAnErrorNamingTheKey) {
  const std::string dir = scratch_dir("bound");
  const std::string path = dir + "/big.jsonl.gz";
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::string small = "{\"text\": \"short\"}\n";
  const std::string big = "{\"text\": \"" + std::string(100000, 'x') + "\"}\n";
  for (const std::string* line : {&small, &big, &small})
    gzwrite(f, line->data(), static_cast<unsigned>(line->size()));
  gzclose(f);
  RunConfig c = test_config();
  c.data.source = path;
  c.data.max_document_bytes = 50000;
  const std::string e = error_of([&] { load_stream(c); });
  EXPECT_NE(e.find("data.max_document_bytes: " + path + ":2: "), std::string::npos) << e;
  EXPECT_NE(e.find("longer than 50000 bytes"), std::string::npos) << e;
  c.data.cache = dir + "/cache";  // converting to shards holds the line too: the same bound
  EXPECT_NE(error_of([&] { load_stream(c); }).find("data.max_document_bytes"), std::string::npos);
  c.data.max_document_bytes = 200000;
  EXPECT_EQ(load_stream(c).size(), 5 + 1 + 100000 + 1 + 5 + 1);
}

}  // namespace
}  // namespace lighthouse::train
