// Flag validators, --set lists and checked output files (args.h).
#include "cli/args.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>

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

std::vector<std::pair<std::string, std::string>> assignments(const std::vector<std::string>& sets) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& s : sets) out.push_back(train::split_assignment(s));
  return out;
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
