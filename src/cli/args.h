// Argument handling shared by the subcommands: integer and number flag validators whose
// messages name the expected value, the config flags every command takes (--config, --set
// key=value, --<key> value) resolved through train::resolve_keys, and output files that fail
// loudly (every file a command writes is checked before the work starts and after it is written).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

#include "lighthouse/config.h"
#include "train/run_config.h"

namespace lighthouse::cli {

// CLI11 validators; a failure reads "--steps: expected a positive integer, got \"0\"".
CLI::Validator positive_int();
CLI::Validator non_negative_int();
CLI::Validator any_int();
CLI::Validator positive_number();

// The config flags of a command, in command-line order once parsed.
struct ConfigFlags {
  std::string file;               // --config
  std::vector<std::string> sets;  // --set KEY=VALUE
  train::Overrides flags;         // --<key> VALUE, and a command's old flag names (aliases)
};

// Adds --set (help `set_help`) and, when `config_help` is not null, --config FILE; with
// `key_flags`, --<key> VALUE for every key of the run config (the same as --set KEY=VALUE).
void add_config_flags(CLI::App& sub, ConfigFlags& f, const char* config_help,
                      const char* set_help, bool key_flags);
// An old flag kept for one release as an alias of --set `key`=VALUE (help names the key).
CLI::Option* add_key_alias(CLI::App& sub, ConfigFlags& f, const std::string& flag,
                           const std::string& key, const std::string& help);
// --set for lighthouse.* keys and the old flags kept as its aliases for one release: --levels,
// --pool, --topk, --tile-topk, --selection and, with `scorer`, --scorer and --dilation. Returns
// the keys those flags set (the `reads` of lighthouse_keys).
std::vector<std::string> add_lighthouse_key_flags(CLI::App& sub, ConfigFlags& f, bool scorer);
// The overrides of f: --<key> flags and aliases, then --set assignments (trimmed) in order;
// throws ConfigError naming --set for an assignment without '='.
train::Overrides overrides(const ConfigFlags& f);

// The lighthouse::Config keys of commands that run the op without a model (bench, bench leak):
// `preset` with the overrides applied through the one resolver. `reads` lists the keys the
// command reads (e.g. "lighthouse.topk"); any other key, or an invalid value, is a ConfigError
// naming it (a key the command would ignore is refused, never dropped).
Config lighthouse_keys(const Config& preset, const train::Overrides& overrides,
                       const std::string& command, const std::vector<std::string>& reads);

// Throws std::runtime_error naming `flag` and `path` unless `path` can be created as a file:
// its folder exists and it is not a directory.
void check_output_file(const std::string& flag, const std::string& path);
// Writes `text` to `path` (replacing it); throws std::runtime_error naming `flag` and `path`.
void write_output_file(const std::string& flag, const std::string& path, const std::string& text);

}  // namespace lighthouse::cli
