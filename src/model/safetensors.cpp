// safetensors writer and reader (format: github.com/huggingface/safetensors, "Format").
#include "model/safetensors.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace lighthouse::model {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors stores little-endian data; this writer copies memory as is");

const std::vector<std::pair<at::ScalarType, const char*>>& dtype_names() {
  static const std::vector<std::pair<at::ScalarType, const char*>> names = {
      {at::kDouble, "F64"}, {at::kFloat, "F32"}, {at::kHalf, "F16"}, {at::kBFloat16, "BF16"},
      {at::kLong, "I64"},   {at::kInt, "I32"},   {at::kShort, "I16"}, {at::kChar, "I8"},
      {at::kByte, "U8"},    {at::kBool, "BOOL"}};
  return names;
}

const char* dtype_name(at::ScalarType t, const std::string& tensor) {
  for (const auto& [type, name] : dtype_names()) {
    if (type == t) return name;
  }
  TORCH_CHECK_TYPE(false, "save_safetensors: tensor '", tensor, "' has dtype ", t,
                   ", expected one of float64/32/16, bfloat16, int64/32/16/8, uint8, bool");
}

at::ScalarType dtype_from_name(const std::string& name, const std::string& path) {
  for (const auto& [type, n] : dtype_names()) {
    if (name == n) return type;
  }
  TORCH_CHECK_VALUE(false, "load_safetensors: ", path, ": unsupported dtype '", name, "'");
}

}  // namespace

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> data;  // CPU, contiguous, in header order
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    TORCH_CHECK_VALUE(name != "__metadata__" && !header.contains(name),
                      "save_safetensors: duplicate or reserved tensor name '", name, "'");
    at::Tensor c = t.detach().to(at::kCPU).contiguous();  // [t.shape]
    const int64_t bytes = static_cast<int64_t>(c.nbytes());
    header[name] = {{"dtype", dtype_name(c.scalar_type(), name)},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(c));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t len = text.size();

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TORCH_CHECK(out, "save_safetensors: cannot open '", tmp, "' for writing");
    out.write(reinterpret_cast<const char*>(&len), sizeof(len));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const at::Tensor& c : data) {
      out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
    }
    out.flush();
    TORCH_CHECK(out, "save_safetensors: writing '", tmp, "' failed");
  }
  TORCH_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "save_safetensors: cannot rename '",
              tmp, "' to '", path, "'");
}

std::map<std::string, at::Tensor> load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  TORCH_CHECK(in, "load_safetensors: cannot open '", path, "'");
  const int64_t size = in.tellg();
  in.seekg(0);
  uint64_t len = 0;
  TORCH_CHECK_VALUE(size >= 8 && in.read(reinterpret_cast<char*>(&len), sizeof(len)),
                    "load_safetensors: ", path, ": file shorter than the 8-byte header length");
  TORCH_CHECK_VALUE(len <= static_cast<uint64_t>(size - 8), "load_safetensors: ", path,
                    ": header length ", len, " exceeds the file size ", size);
  std::string text(len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(len));
  const nlohmann::json header = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  TORCH_CHECK_VALUE(header.is_object(), "load_safetensors: ", path, ": header is not JSON");
  const int64_t data_start = 8 + static_cast<int64_t>(len);
  const int64_t data_size = size - data_start;

  std::map<std::string, at::Tensor> out;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const at::ScalarType dtype = dtype_from_name(entry.at("dtype").get<std::string>(), path);
    const auto shape = entry.at("shape").get<std::vector<int64_t>>();
    const auto range = entry.at("data_offsets").get<std::vector<int64_t>>();
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));  // [shape]
    TORCH_CHECK_VALUE(range.size() == 2 && range[0] >= 0 && range[1] <= data_size &&
                          range[1] - range[0] == static_cast<int64_t>(t.nbytes()),
                      "load_safetensors: ", path, ": tensor '", name,
                      "' has data_offsets inconsistent with its shape/dtype or the file size");
    in.seekg(data_start + range[0]);
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    TORCH_CHECK_VALUE(in, "load_safetensors: ", path, ": reading tensor '", name, "' failed");
    out.emplace(name, std::move(t));
  }
  return out;
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in, "load_safetensors: cannot open '", path, "'");
  uint64_t len = 0;
  TORCH_CHECK_VALUE(in.read(reinterpret_cast<char*>(&len), sizeof(len)) && len < (1ull << 30),
                    "load_safetensors: ", path, ": no valid header length");
  std::string text(len, '\0');
  TORCH_CHECK_VALUE(in.read(text.data(), static_cast<std::streamsize>(len)),
                    "load_safetensors: ", path, ": file shorter than its header");
  const auto header = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  TORCH_CHECK_VALUE(header.is_object(), "load_safetensors: ", path, ": header is not JSON");
  std::map<std::string, std::string> out;
  if (header.contains("__metadata__"))
    for (const auto& [k, v] : header["__metadata__"].items())
      if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

}  // namespace lighthouse::model
