// safetensors round trips and the Hugging Face export layout (names, dtypes, config.json).
// The logits comparison with transformers lives in tests/python/test_export_hf.py.
#include <ftw.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "model/export.h"
#include "model/tiny.h"

namespace lighthouse::model {
namespace {

// POSIX file helpers: libtorch.so exports its own std::filesystem symbols, which the dynamic
// linker may bind in place of ours (fs::remove_all crashes that way).
int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

// A fresh directory per test under $TMPDIR (or /tmp), removed with its contents afterwards.
class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp ? tmp : "/tmp") + "/lighthouse_export_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << pattern;
    dir_ = pattern;
  }
  void TearDown() override {
    ::nftw(
        dir_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return std::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

using Safetensors = TempDir;
using ExportHf = TempDir;

TEST_F(Safetensors, RoundTripEveryDtype) {
  torch::manual_seed(0);
  std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"f32", torch::randn({3, 5})},
      {"bf16", torch::randn({7}).to(at::kBFloat16)},
      {"f16", torch::randn({2, 2, 2}).to(at::kHalf)},
      {"f64", torch::randn({1}, torch::kDouble)},
      {"i64", torch::randint(-1000, 1000, {4, 1}, torch::kLong)},
      {"i32", torch::randint(-1000, 1000, {5}, torch::kInt)},
      {"u8", torch::randint(0, 255, {9}, torch::kByte)},
      {"scalar", torch::tensor(2.5)},
      {"strided", torch::randn({4, 6}).t()}};
  const std::string file = path("t.safetensors");
  save_safetensors(file, tensors, {{"format", "pt"}});
  EXPECT_EQ(file_size(file + ".tmp"), -1);
  const auto loaded = load_safetensors(file);
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const at::Tensor& l = loaded.at(name);
    EXPECT_EQ(l.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(l, t)) << name;
  }
}

TEST_F(Safetensors, HeaderIsAlignedLittleEndianJson) {
  const std::string file = path("t.safetensors");
  save_safetensors(file, {{"x", torch::arange(3, torch::kFloat)}});
  std::ifstream in(file, std::ios::binary);
  uint64_t len = 0;
  in.read(reinterpret_cast<char*>(&len), 8);
  EXPECT_EQ(len % 8, 0u);
  std::string header(len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(len));
  const auto json = nlohmann::json::parse(header);
  EXPECT_EQ(json["x"]["dtype"], "F32");
  EXPECT_EQ(json["x"]["shape"], nlohmann::json::array({3}));
  EXPECT_EQ(json["x"]["data_offsets"], nlohmann::json::array({0, 12}));
  EXPECT_EQ(file_size(file), static_cast<int64_t>(8 + len + 12));
}

TEST_F(Safetensors, TruncatedFileIsAnErrorNamingThePath) {
  const std::string file = path("t.safetensors");
  save_safetensors(file, {{"x", torch::randn({64})}});
  ASSERT_EQ(::truncate(file.c_str(), file_size(file) - 4), 0);
  try {
    load_safetensors(file);
    ADD_FAILURE() << "truncated file loaded";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_safetensors(path("missing")), c10::Error);
}

TEST_F(ExportHf, LayoutNamesAndConfig) {
  const ModelConfig cfg = testing::tiny_config();
  Llama model = testing::make_model(cfg);
  model->set_attention_mode(AttentionMode::Lighthouse);  // the mode is not exported
  export_hf(model, dir_, at::kFloat, 4096);
  const auto tensors = load_safetensors(path("model.safetensors"));
  const auto params = model->named_parameters();
  ASSERT_EQ(tensors.size(), params.size());
  for (const auto& p : params) {
    const std::string hf = hf_parameter_name(p.key());
    ASSERT_TRUE(tensors.count(hf)) << hf;
    EXPECT_TRUE(torch::equal(tensors.at(hf), p.value())) << hf;
  }
  for (const char* name : {"model.embed_tokens.weight", "model.layers.4.self_attn.o_proj.weight",
                           "model.layers.0.mlp.down_proj.weight",
                           "model.layers.3.post_attention_layernorm.weight", "model.norm.weight",
                           "lm_head.weight"}) {
    EXPECT_TRUE(tensors.count(name)) << name;
  }

  std::ifstream in(path("config.json"));
  const auto config = nlohmann::json::parse(in);
  EXPECT_EQ(config["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(config["hidden_size"], cfg.d_model);
  EXPECT_EQ(config["intermediate_size"], cfg.ffn_hidden);
  EXPECT_EQ(config["num_hidden_layers"], cfg.n_layers);
  EXPECT_EQ(config["num_attention_heads"], cfg.n_heads);
  EXPECT_EQ(config["num_key_value_heads"], cfg.n_kv_heads);
  EXPECT_EQ(config["head_dim"], cfg.head_dim);
  EXPECT_EQ(config["vocab_size"], kVocab);
  EXPECT_EQ(config["max_position_embeddings"], 4096);
  EXPECT_EQ(config["tie_word_embeddings"], false);
  EXPECT_EQ(config["bos_token_id"], kBos);
  EXPECT_EQ(config["eos_token_id"], kEos);
  EXPECT_EQ(config["pad_token_id"], kPad);
  EXPECT_EQ(config["torch_dtype"], "float32");
  EXPECT_DOUBLE_EQ(config["rope_theta"].get<double>(), cfg.rope_theta);
  EXPECT_DOUBLE_EQ(config["rms_norm_eps"].get<double>(), cfg.norm_eps);
}

TEST_F(ExportHf, Bfloat16AndBadDtype) {
  Llama model = testing::make_model(testing::tiny_config());
  export_hf(model, dir_, at::kBFloat16);
  const auto tensors = load_safetensors(path("model.safetensors"));
  const at::Tensor& w = tensors.at("lm_head.weight");
  EXPECT_EQ(w.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(torch::equal(w, model->named_parameters()["lm_head.weight"].to(at::kBFloat16)));
  EXPECT_THROW(export_hf(model, dir_, at::kDouble), c10::Error);
}

}  // namespace
}  // namespace lighthouse::model
