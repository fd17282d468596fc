// Argument handling shared by the subcommands: integer and number flag validators whose
// messages name the expected value, `--set key=value` lists, and output files that fail loudly
// (every file a command writes is checked before the work starts and after it is written).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

namespace lighthouse::cli {

// CLI11 validators; a failure reads "--steps: expected a positive integer, got \"0\"".
CLI::Validator positive_int();
CLI::Validator non_negative_int();
CLI::Validator any_int();
CLI::Validator positive_number();

// `--set` values in order as (key, value) pairs, key and value trimmed; throws ConfigError.
std::vector<std::pair<std::string, std::string>> assignments(const std::vector<std::string>& sets);

// Throws std::runtime_error naming `flag` and `path` unless `path` can be created as a file:
// its folder exists and it is not a directory.
void check_output_file(const std::string& flag, const std::string& path);
// Writes `text` to `path` (replacing it); throws std::runtime_error naming `flag` and `path`.
void write_output_file(const std::string& flag, const std::string& path, const std::string& text);

}  // namespace lighthouse::cli
