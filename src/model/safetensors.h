// The safetensors file format, written and read directly: an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}} padded
// with spaces to 8 bytes, then the raw little-endian tensor bytes in header order.
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lighthouse::model {

// Writes tensors (moved to CPU, made contiguous) atomically: a temporary file, then rename.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Every tensor of a safetensors file, on CPU. The file is untrusted (docs/trust.md): the header
// length, every entry's dtype, shape and data_offsets are checked against the file before
// anything is allocated; a malformed file throws c10::ValueError naming the path and tensor.
std::map<std::string, at::Tensor> load_safetensors(const std::string& path);
// The "__metadata__" map of a safetensors file (empty when it has none), with the same checks.
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

// The shape a JSON "shape" field of an untrusted header describes and its data's size in bytes
// at `element_size` bytes an element: a list of non-negative integers whose product (in
// overflow-checked arithmetic) is at most 2^62 bytes. Returns "" or what is wrong with it.
std::string tensor_extent(const nlohmann::json& shape, int64_t element_size,
                          std::vector<int64_t>& dims, int64_t& bytes);

}  // namespace lighthouse::model
