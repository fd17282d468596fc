// Flag validators, --set lists and checked output files (args.h).
#include "cli/args.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>

#include "lighthouse/config_check.h"
#include "train/run_config.h"

namespace lighthouse::cli {
namespace fs = std::filesystem;
namespace {

bool parse_int(const std::string& s, int64_t* out) {
  const char* b = s.data() + (!s.empty() && s[0] == '+');
  const auto r = std::from_chars(b, s.data() + s.size(), *out);
  return b != s.data() + s.size() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

CLI::Validator int_validator(const char* what, int64_t min, const char* name) {
  return CLI::Validator(
      [what, min](std::string& v) -> std::string {
        int64_t i = 0;
        if (parse_int(v, &i) && i >= min) return "";
        return std::string("expected ") + what + ", got \"" + v + "\"";
      },
      what, name);
}

}  // namespace

CLI::Validator positive_int() { return int_validator("a positive integer", 1, "POSITIVE"); }
CLI::Validator non_negative_int() { return int_validator("an integer >= 0", 0, "NONNEGATIVE"); }
CLI::Validator any_int() {
  return int_validator("an integer", std::numeric_limits<int64_t>::min(), "INT");
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        char* end = nullptr;
        const double d = v.empty() ? 0 : std::strtod(v.c_str(), &end);
        if (!v.empty() && end == v.c_str() + v.size() && std::isfinite(d) && d > 0) return "";
        return "expected a positive number, got \"" + v + "\"";
      },
      "a positive number", "POSITIVE_NUMBER");
}

void add_config_flags(CLI::App& sub, ConfigFlags& f, const char* config_help,
                      const char* set_help, bool key_flags) {
  if (config_help) sub.add_option("--config", f.file, config_help)->check(CLI::ExistingFile);
  sub.add_option("--set", f.sets, set_help)->type_name("KEY=VALUE");
  if (!key_flags) return;
  for (const auto& k : train::all_keys())
    add_key_alias(sub, f, "--" + k.key, k.key, k.help)
        ->group("Config keys (same as --set KEY=VALUE)");
}

CLI::Option* add_key_alias(CLI::App& sub, ConfigFlags& f, const std::string& flag,
                           const std::string& key, const std::string& help) {
  return sub.add_option_function<std::string>(
      flag, [&f, key](const std::string& v) { f.flags.emplace_back(key, v); }, help);
}

std::vector<std::string> add_lighthouse_key_flags(CLI::App& sub, ConfigFlags& f, bool scorer) {
  std::vector<std::string> keys;
  sub.add_option("--set", f.sets,
                 "set a lighthouse.* key, e.g. --set lighthouse.topk=512 (repeatable)")
      ->type_name("KEY=VALUE");
  const auto alias = [&](const char* flag, const char* key, const char* what) {
    keys.push_back(key);
    return add_key_alias(sub, f, flag, key,
                         std::string(what) + " (old name of --set " + key + "=VALUE)");
  };
  alias("--levels", "lighthouse.levels", "pyramid levels L")->check(positive_int());
  alias("--pool", "lighthouse.pool", "pooling factor p")->check(positive_int());
  alias("--topk", "lighthouse.topk", "per-level budget k")->check(positive_int());
  alias("--tile-topk", "lighthouse.tile_topk", "per-tile budget m")->check(positive_int());
  alias("--selection", "lighthouse.selection", "stratified|causal (SPEC.md §12)")
      ->check(CLI::IsMember({"stratified", "causal"}));
  if (!scorer) return keys;
  alias("--scorer", "lighthouse.scorer",
        "norm | dilated (the CUDA sweep times dilated next to norm)")
      ->check(CLI::IsMember({"norm", "dilated"}));
  alias("--dilation", "lighthouse.dilation", "dilated scorer: strided sub-sequences delta")
      ->check(positive_int());
  return keys;
}

train::Overrides overrides(const ConfigFlags& f) {
  train::Overrides out = f.flags;
  for (const auto& s : f.sets) out.push_back(train::split_assignment(s));
  return out;
}

Config lighthouse_keys(const Config& preset, const train::Overrides& overrides,
                       const std::string& command, const std::vector<std::string>& reads) {
  train::RunConfig c;
  c.model.lighthouse = preset;
  c = train::resolve_keys(c, "", overrides);  // unknown keys and bad values named here
  for (const auto& kv : overrides) {
    if (std::find(reads.begin(), reads.end(), kv.first) != reads.end()) continue;
    std::string list;
    for (const auto& r : reads) list += (list.empty() ? "" : ", ") + r;
    throw train::ConfigError(kv.first + ": " + command + " reads only " + list);
  }
  const Issue issue = check(c.model.lighthouse);
  if (!issue.ok()) throw train::ConfigError("lighthouse." + issue.parameter + ": " + issue.message);
  return c.model.lighthouse;
}

void check_output_file(const std::string& flag, const std::string& path) {
  std::error_code ec;
  if (path.empty()) throw std::runtime_error(flag + ": expected a file name, got \"\"");
  if (fs::is_directory(path, ec))
    throw std::runtime_error(flag + ": " + path + " is a directory, expected a file name");
  const fs::path parent = fs::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  if (!fs::is_directory(dir, ec))
    throw std::runtime_error(flag + ": cannot write " + path + ": no such directory " + dir);
  if (::access(dir.c_str(), W_OK) != 0)
    throw std::runtime_error(flag + ": cannot write " + path + ": " + std::strerror(errno));
}

void write_output_file(const std::string& flag, const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    throw std::runtime_error(flag + ": cannot open " + path +
                             " for writing: " + std::strerror(errno));
  out << text;
  out.flush();
  if (!out)
    throw std::runtime_error(flag + ": writing " + path + " failed: " + std::strerror(errno));
}

}  // namespace lighthouse::cli
