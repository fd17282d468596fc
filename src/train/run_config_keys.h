// The dotted-key table of RunConfig, shared inside train/ by its owner (run_config_keys.cpp:
// the table, key lookup, typed stores), its readers (run_config_read.cpp: TOML, JSON and
// `key=value` text), its writers (run_config_write.cpp: TOML and JSON) and its checks
// (run_config_check.cpp: validation and resume compatibility).
#pragma once

#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "train/run_config.h"

namespace lighthouse::train::keys {

enum class Kind { Int, Float, Bool, String, IntList, StringList };

using Value = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>,
                           std::vector<std::string>>;

// One dotted key: where its value lives in RunConfig (get / set; set receives a Value of the
// key's kind), its help text, and whether a resume may change it.
struct Field {
  const char* key;
  Kind kind;
  const char* help;
  bool frozen_on_resume;  // changing it would change the data order or the model's shapes
  std::function<Value(const RunConfig&)> get;
  std::function<void(RunConfig&, const Value&)> set;
};

// Every key, in file order.
const std::vector<Field>& fields();
// The field of `raw_key` (trimmed); throws ConfigError naming it (and the closest key) if unknown.
const Field& find_field(const std::string& raw_key, const std::string& origin);
// "an integer", "a number", ...: what a key of kind k expects, for error messages.
const char* kind_name(Kind k);
// v converted to f's kind (an integer is a valid number) and stored; throws naming the key.
void assign(RunConfig& cfg, const Field& f, const Value& v, const std::string& origin);
// s without leading and trailing blanks and tabs.
std::string trim(const std::string& s);
// The TOML text of one value (also used to compare and report values).
std::string toml_value(const RunConfig& cfg, const Field& f);

// Top-level member of to_json's object: 2 since an empty model.dense_layers means none.
inline constexpr const char* kConfigVersionKey = "config_version";

// The arguments streamed into one string.
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// Throws ConfigError "<key>: <msg>".
[[noreturn]] inline void fail(const std::string& key, const std::string& msg) {
  throw ConfigError(key + ": " + msg);
}

}  // namespace lighthouse::train::keys
