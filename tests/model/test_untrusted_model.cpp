// Models the tools did not write (docs/trust.md): malformed safetensors headers are errors
// naming the file and the tensor before anything is allocated; config.json values the
// lighthouse Llama cannot honour are refused naming the file and field (never truncated or
// ignored); NaN / Inf weights are refused on import naming the tensor.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "model/export.h"
#include "model/tiny.h"

namespace lighthouse::model {
namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return std::string("not a c10::Error: ") + e.what();
  }
  return "";
}

class Untrusted : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp ? tmp : "/tmp") + "/lighthouse_untrusted_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    for (const char* f : {"x.safetensors", "hf/model.safetensors", "hf/config.json",
                          "hf/generation_config.json"})
      std::remove((dir_ + "/" + f).c_str());
    ::rmdir((dir_ + "/hf").c_str());
    ::rmdir(dir_.c_str());
  }
  // A safetensors file whose header is `header` (padded) followed by `data_bytes` zero bytes.
  std::string write_raw(const std::string& header, size_t data_bytes) {
    const std::string path = dir_ + "/x.safetensors";
    std::string h = header;
    h.append((8 - h.size() % 8) % 8, ' ');
    const uint64_t len = h.size();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << h << std::string(data_bytes, '\0');
    return path;
  }
  std::string dir_;
};

TEST_F(Untrusted, MalformedSafetensorsHeadersNameTheFileAndTensor) {
  const struct {
    const char* header;
    const char* expect;
  } cases[] = {
      {R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", "tensor 'w': has no \"dtype\""},
      {R"({"w": {"dtype": 5, "shape": [2], "data_offsets": [0, 8]}})", "tensor 'w': dtype must"},
      {R"({"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}})",
       "tensor 'w': unsupported dtype 'Q4'"},
      {R"({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})",
       "tensor 'w': shape must be a list"},
      {R"({"w": {"dtype": "F32", "shape": [-5], "data_offsets": [0, 8]}})",
       "tensor 'w': shape must hold non-negative integers"},
      {R"({"w": {"dtype": "F32", "shape": [1048576, 1048576], "data_offsets": [0, 8]}})",
       "tensor 'w': data_offsets [0,8] hold 8 bytes, its dtype and shape need 4398046511104"},
      {R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})",
       "tensor 'w': shape [4294967296,4294967296] is larger than any file"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4000000000000]}})",
       "tensor 'w': data_offsets [0,4000000000000] are outside the file's 8 data bytes"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})",
       "tensor 'w': data_offsets [8,0] are outside"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": "0-8"}})",
       "tensor 'w': data_offsets must be [begin, end]"},
      {R"({"w": 3})", "tensor 'w': entry is not an object"},
      {R"([1, 2])", "header is not a JSON object"},
      {R"({"__metadata__": 3})", "__metadata__ is not an object"},
  };
  for (const auto& c : cases) {
    const std::string path = write_raw(c.header, 8);
    const std::string e = error_of([&] { load_safetensors(path); });
    EXPECT_NE(e.find("load_safetensors: " + path + ": "), std::string::npos) << c.header << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.header << "\n" << e;
  }
  // A header length past the file.
  const std::string path = dir_ + "/x.safetensors";
  {
    std::ofstream out(path, std::ios::binary);
    const uint64_t len = uint64_t{1} << 40;
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << "{}";
  }
  EXPECT_NE(error_of([&] { load_safetensors_metadata(path); }).find("exceeds the file size"),
            std::string::npos);
}

// A tiny export in dir/hf whose config.json gets `key` set to `value` (JSON text).
std::string export_with(const std::string& dir, const std::string& key, const std::string& value) {
  const std::string hf = dir + "/hf";
  export_hf(testing::make_model(testing::tiny_config()), hf);
  std::ifstream in(hf + "/config.json");
  nlohmann::json cfg = nlohmann::json::parse(in);
  cfg[key] = nlohmann::json::parse(value);
  std::ofstream(hf + "/config.json") << cfg.dump(2);
  return hf;
}

TEST_F(Untrusted, ConfigValuesNotUnderstoodAreRefusedNamingFileAndField) {
  const struct {
    const char* key;
    const char* value;
    const char* expect;
  } cases[] = {
      {"rope_scaling", R"("yarn")", "\"rope_scaling\" must be an object"},
      {"rope_scaling", "5", "\"rope_scaling\" must be an object"},
      {"rope_scaling", "[1, 2]", "\"rope_scaling\" must be an object"},
      {"rope_parameters", R"("yarn")", "\"rope_parameters\" must be an object"},
      {"rope_scaling", R"({"rope_type": "yarn", "factor": 4})",
       "\"rope_scaling.rope_type\" \"yarn\" is not supported"},
      {"num_key_value_heads", "2.5", "\"num_key_value_heads\" must be a positive integer, got 2.5"},
      {"vocab_size", "0", "\"vocab_size\" must be a positive integer, got 0"},
      {"hidden_size", R"("32")", "\"hidden_size\" must be a positive integer"},
      {"rms_norm_eps", R"("small")", "\"rms_norm_eps\" must be a number"},
      {"tie_word_embeddings", R"("yes")", "\"tie_word_embeddings\" must be true or false"},
  };
  for (const auto& c : cases) {
    const std::string hf = export_with(dir_, c.key, c.value);
    const std::string e = error_of([&] { read_hf_export(hf, "model.init"); });
    EXPECT_NE(e.find("model.init: " + hf + "/config.json: "), std::string::npos) << c.key << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.key << "=" << c.value << "\n" << e;
  }
}

TEST_F(Untrusted, NonFiniteWeightsAreRefusedOnImportNamingTheTensor) {
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::infinity()}) {
    Llama model = testing::make_model(testing::tiny_config());
    {
      torch::NoGradGuard no_grad;
      model->named_parameters()["layers.2.mlp.up_proj.weight"].view({-1})[5].fill_(bad);
    }
    const std::string hf = dir_ + "/hf";
    export_hf(model, hf);
    const std::string e = error_of([&] { read_hf_export(hf, "model.init"); });
    EXPECT_NE(e.find("model.init: " + hf + "/model.safetensors: tensor "
                     "model.layers.2.mlp.up_proj.weight holds NaN or infinite values"),
              std::string::npos)
        << e;
  }
}

}  // namespace
}  // namespace lighthouse::model
