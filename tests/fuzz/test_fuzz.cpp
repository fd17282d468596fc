// The readers of untrusted files (docs/trust.md) on mutated inputs: token shards (manifest and
// shard files), safetensors, TOML and JSON run configs, checkpoints. Each input must end in
// success or the reader's own error type (ConfigError, c10::Error, CheckpointError): never a
// crash, another exception (std::bad_alloc, a JSON library error) or a hang. The seeds live in
// tests/fuzz/corpus; the mutations are seeded (LIGHTHOUSE_FUZZ_SEED, default 1) and their
// number per reader is LIGHTHOUSE_FUZZ_INPUTS (default 3000). A failing input is saved under
// the test's temp directory and named in the failure. Built twice: plainly and, where the
// compiler has them, under AddressSanitizer + UBSan (tests/CMakeLists.txt).
#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <typeinfo>

#include "fuzz/mutate.h"
#include "model/safetensors.h"
#include "train/checkpoint.h"
#include "train/run_config.h"
#include "train/shards.h"

namespace lighthouse::fuzz {
namespace {

const std::string kCorpus = LIGHTHOUSE_FUZZ_CORPUS;

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : fallback;
}

const int64_t kInputs = env_int("LIGHTHOUSE_FUZZ_INPUTS", 3000);
const uint64_t kSeed = static_cast<uint64_t>(env_int("LIGHTHOUSE_FUZZ_SEED", 1));

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "missing seed " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

// A fresh directory for one reader's inputs.
std::string work_dir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "lh_fuzz_" + name + "_" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

// Runs `read` on input i; an exception other than the reader's own is a failure that saves
// the input files (`files`: name -> bytes) for a reproduction.
template <typename Allowed>
void expect_clean(const std::string& dir, int64_t i,
                  const std::map<std::string, std::string>& files,
                  const std::function<void()>& read, int64_t& errors) {
  std::string unexpected;
  try {
    read();
  } catch (const Allowed& e) {
    ++errors;
    if (std::string(e.what()).empty()) unexpected = "an empty error message";
  } catch (const std::exception& e) {
    unexpected = std::string("unexpected ") + typeid(e).name() + ": " + e.what();
  }
  if (unexpected.empty()) return;
  const std::string keep = dir + "/failure-" + std::to_string(i);
  ::mkdir(keep.c_str(), 0755);
  for (const auto& [name, bytes] : files) write_file(keep + "/" + name, bytes);
  ADD_FAILURE() << "input " << i << " (seed " << kSeed << ", saved in " << keep << "): "
                << unexpected;
}

// How many inputs were accepted / refused, printed so a run shows the mix is not one-sided.
void report(const char* reader, int64_t errors) {
  std::printf("%s: %lld inputs, %lld refused with the reader's error, %lld accepted\n", reader,
              static_cast<long long>(kInputs), static_cast<long long>(errors),
              static_cast<long long>(kInputs - errors));
}

TEST(Fuzz, ShardReader) {
  const std::string dir = work_dir("shards");
  std::vector<std::map<std::string, std::string>> seeds;
  for (const char* name : {"u16", "u32"}) {
    std::map<std::string, std::string> files;
    const std::string d = kCorpus + "/shards/" + name;
    files["manifest.json"] = read_file(d + "/manifest.json");
    for (const char* s : {"shard-000000.bin", "shard-000001.bin"})
      if (::access((d + "/" + s).c_str(), R_OK) == 0) files[s] = read_file(d + "/" + s);
    ASSERT_NO_THROW(train::ShardSet::open(d, true)) << d;  // the seeds are valid
    seeds.push_back(files);
  }
  Mutator m(kSeed);
  int64_t errors = 0;
  for (int64_t i = 0; i < kInputs; ++i) {
    std::map<std::string, std::string> files = seeds[m.below(seeds.size())];
    auto it = files.begin();
    std::advance(it, static_cast<long>(m.below(files.size())));
    it->second = m.mutate(it->second, it->first == "manifest.json");
    if (it->first != "manifest.json" && m.below(2)) {  // the manifest's CRC made to match
      auto j = nlohmann::json::parse(files["manifest.json"]);
      for (auto& e : j["shards"])
        if (e["name"] == it->first && it->second.size() >= 64)
          e["crc32"] = crc32(0L, reinterpret_cast<const unsigned char*>(it->second.data()) + 64,
                             static_cast<unsigned>(it->second.size() - 64));
      files["manifest.json"] = j.dump();
    }
    for (const char* s : {"shard-000000.bin", "shard-000001.bin"}) ::unlink((dir + "/" + s).c_str());
    for (const auto& [name, bytes] : files) write_file(dir + "/" + name, bytes);
    const bool verify = m.below(2) == 0;
    expect_clean<train::ConfigError>(dir, i, files, [&] {
      const auto set = train::ShardSet::open(dir, verify);
      std::vector<int64_t> out(static_cast<size_t>(std::min<int64_t>(set->size(), 4096)));
      set->read(0, static_cast<int64_t>(out.size()), out.data());
    }, errors);
  }
  report("shards", errors);
}

TEST(Fuzz, SafetensorsReader) {
  const std::string dir = work_dir("safetensors");
  const std::vector<std::string> seeds = {read_file(kCorpus + "/safetensors/small.safetensors"),
                                          read_file(kCorpus + "/safetensors/empty.safetensors")};
  EXPECT_EQ(model::load_safetensors(kCorpus + "/safetensors/small.safetensors").size(), 3u);
  Mutator m(kSeed + 1);
  int64_t errors = 0;
  const std::string path = dir + "/x.safetensors";
  for (int64_t i = 0; i < kInputs; ++i) {
    std::string s = seeds[m.below(seeds.size())];
    if (m.below(2)) {  // the JSON header mutated as text, its length made to match
      uint64_t len = 0;
      std::memcpy(&len, s.data(), 8);
      std::string header = m.mutate(s.substr(8, len), true);
      const uint64_t n = header.size();
      s = std::string(reinterpret_cast<const char*>(&n), 8) + header + s.substr(8 + len);
    } else {
      s = m.mutate(s, false);
    }
    write_file(path, s);
    expect_clean<c10::Error>(dir, i, {{"x.safetensors", s}}, [&] {
      model::load_safetensors_metadata(path);
      model::load_safetensors(path);
    }, errors);
  }
  report("safetensors", errors);
}

TEST(Fuzz, TomlAndJsonConfigReaders) {
  const std::string dir = work_dir("config");
  const std::string toml = read_file(kCorpus + "/config/tiny.toml");
  train::RunConfig base;
  ASSERT_NO_THROW(train::apply_toml(base, toml, "tiny.toml"));
  const std::string json = train::to_json(base).dump(1);  // the JSON seed: the same config
  Mutator m(kSeed + 2);
  int64_t errors = 0;
  for (int64_t i = 0; i < kInputs; ++i) {
    const bool as_toml = m.below(2) == 0;
    const std::string text = m.mutate(as_toml ? toml : json, true);
    expect_clean<train::ConfigError>(dir, i, {{as_toml ? "c.toml" : "c.json", text}}, [&] {
      train::RunConfig c;
      if (as_toml) {
        train::apply_toml(c, text, "c.toml");
      } else {
        const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) throw train::ConfigError("c.json: not JSON");
        train::apply_json(c, j, "c.json");
      }
      train::validate(c);
    }, errors);
  }
  report("config", errors);
}

TEST(Fuzz, CheckpointReader) {
  const std::string dir = work_dir("checkpoint");
  const std::string seed = read_file(kCorpus + "/checkpoint/small.ckpt");
  EXPECT_EQ(train::read_checkpoint(kCorpus + "/checkpoint/small.ckpt").tensors.size(), 4u);
  Mutator m(kSeed + 3);
  int64_t errors = 0;
  const std::string path = dir + "/step-00000003.ckpt";
  for (int64_t i = 0; i < kInputs; ++i) {
    std::string s = m.mutate(seed, m.below(2) == 0);
    if (s.size() >= 12 && m.below(2)) {  // the trailer made to match: past the checksum
      const std::string body = s.substr(0, s.size() - 12);
      const uint32_t crc = static_cast<uint32_t>(
          crc32(0L, reinterpret_cast<const unsigned char*>(body.data()),
                static_cast<unsigned>(body.size())));
      const uint64_t len = body.size();
      s = body + std::string(reinterpret_cast<const char*>(&crc), 4) +
          std::string(reinterpret_cast<const char*>(&len), 8);
    }
    write_file(path, s);
    expect_clean<train::CheckpointError>(dir, i, {{"step-00000003.ckpt", s}},
                                         [&] { train::read_checkpoint(path); }, errors);
  }
  report("checkpoint", errors);
}

}  // namespace
}  // namespace lighthouse::fuzz
