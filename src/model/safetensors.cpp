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

// `where`: the file and tensor, for the error.
at::ScalarType dtype_from_name(const std::string& name, const std::string& where) {
  for (const auto& [type, n] : dtype_names()) {
    if (name == n) return type;
  }
  TORCH_CHECK_VALUE(false, "load_safetensors: ", where, ": unsupported dtype '", name,
                    "' (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
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

std::string tensor_extent(const nlohmann::json& shape, int64_t element_size,
                          std::vector<int64_t>& dims, int64_t& bytes) {
  if (!shape.is_array()) return "shape must be a list of sizes, got " + shape.dump();
  dims.clear();
  int64_t n = element_size;
  for (const auto& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0)
      return "shape must hold non-negative integers, got " + shape.dump();
    const int64_t v = d.get<int64_t>();
    if (__builtin_mul_overflow(n, v, &n) || n > (int64_t{1} << 62))
      return "shape " + shape.dump() + " is larger than any file";
    dims.push_back(v);
  }
  bytes = n;
  return "";
}

namespace {

constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;  // the format's own limit

// An open safetensors file with its parsed header; every check of the header's framing done.
struct Parsed {
  std::ifstream in;
  nlohmann::json header;
  int64_t data_start = 0, data_size = 0;
};

Parsed parse(const std::string& path) {
  Parsed p;
  p.in.open(path, std::ios::binary | std::ios::ate);
  TORCH_CHECK_VALUE(p.in, "load_safetensors: cannot open '", path, "'");
  const int64_t size = p.in.tellg();
  p.in.seekg(0);
  uint64_t len = 0;
  TORCH_CHECK_VALUE(size >= 8 && p.in.read(reinterpret_cast<char*>(&len), sizeof(len)),
                    "load_safetensors: ", path, ": file shorter than the 8-byte header length");
  TORCH_CHECK_VALUE(len <= static_cast<uint64_t>(size - 8), "load_safetensors: ", path,
                    ": header length ", len, " exceeds the file size ", size);
  TORCH_CHECK_VALUE(len <= kMaxHeaderBytes, "load_safetensors: ", path, ": header length ", len,
                    " exceeds the format's limit of ", kMaxHeaderBytes, " bytes");
  std::string text(len, '\0');
  TORCH_CHECK_VALUE(p.in.read(text.data(), static_cast<std::streamsize>(len)),
                    "load_safetensors: ", path, ": reading the header failed");
  p.header = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  TORCH_CHECK_VALUE(p.header.is_object(), "load_safetensors: ", path,
                    ": header is not a JSON object");
  TORCH_CHECK_VALUE(!p.header.contains("__metadata__") || p.header["__metadata__"].is_object(),
                    "load_safetensors: ", path, ": __metadata__ is not an object");
  p.data_start = 8 + static_cast<int64_t>(len);
  p.data_size = size - p.data_start;
  return p;
}

}  // namespace

std::map<std::string, at::Tensor> load_safetensors(const std::string& path) {
  Parsed p = parse(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, entry] : p.header.items()) {
    if (name == "__metadata__") continue;
    const auto bad = [&](const std::string& why) {
      TORCH_CHECK_VALUE(false, "load_safetensors: ", path, ": tensor '", name, "': ", why);
    };
    if (!entry.is_object()) bad("entry is not an object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(key)) bad(std::string("has no \"") + key + "\"");
    if (!entry["dtype"].is_string()) bad("dtype must be a string, got " + entry["dtype"].dump());
    const at::ScalarType dtype = dtype_from_name(entry["dtype"].get<std::string>(), path + ": tensor '" + name + "'");
    std::vector<int64_t> shape;
    int64_t bytes = 0;
    const std::string why = tensor_extent(entry["shape"], c10::elementSize(dtype), shape, bytes);
    if (!why.empty()) bad(why);
    const auto& range = entry["data_offsets"];
    if (!range.is_array() || range.size() != 2 || !range[0].is_number_integer() ||
        !range[1].is_number_integer())
      bad("data_offsets must be [begin, end], got " + range.dump());
    const int64_t begin = range[0].get<int64_t>(), end = range[1].get<int64_t>();
    if (begin < 0 || end < begin || end > p.data_size)
      bad("data_offsets " + range.dump() + " are outside the file's " +
          std::to_string(p.data_size) + " data bytes");
    if (end - begin != bytes)
      bad("data_offsets " + range.dump() + " hold " + std::to_string(end - begin) +
          " bytes, its dtype and shape need " + std::to_string(bytes));
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));  // [shape]
    p.in.seekg(p.data_start + begin);
    p.in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes));
    if (!p.in) bad("reading its data failed");
    out.emplace(name, std::move(t));
  }
  return out;
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  const Parsed p = parse(path);
  std::map<std::string, std::string> out;
  if (p.header.contains("__metadata__"))
    for (const auto& [k, v] : p.header["__metadata__"].items())
      if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

}  // namespace lighthouse::model
