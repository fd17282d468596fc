// Validation of a lighthouse::Config that names the parameter it rejects, so callers (the run
// config, the model) report it under their own key without parsing the message.
#pragma once

#include <string>

#include "lighthouse/config.h"

namespace lighthouse {

// A rejected value: `parameter` is the field's name (levels, pool, topk, tile_topk, dilation),
// `message` names its value and the rule. Both are empty when nothing is wrong.
struct Issue {
  std::string parameter;
  std::string message;
  bool ok() const { return parameter.empty(); }
};

// The first field of cfg that is invalid on its own (independent of the sequence length);
// validate(cfg) is its message.
Issue check(const Config& cfg);

}  // namespace lighthouse
