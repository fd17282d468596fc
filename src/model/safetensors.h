// The safetensors file format, written and read directly: an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}} padded
// with spaces to 8 bytes, then the raw little-endian tensor bytes in header order.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lighthouse::model {

// Writes tensors (moved to CPU, made contiguous) atomically: a temporary file, then rename.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Every tensor of a safetensors file, on CPU; malformed files give an error naming the path.
std::map<std::string, at::Tensor> load_safetensors(const std::string& path);
// The "__metadata__" map of a safetensors file (empty when it has none).
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

}  // namespace lighthouse::model
