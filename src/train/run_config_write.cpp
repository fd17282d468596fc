// Writing RunConfig: every key's value as TOML text (the resolved config next to a run's
// logs, and the values resume checks compare) and as a JSON object (checkpoints).
#include <charconv>
#include <cstdio>

#include "train/run_config_keys.h"

namespace lighthouse::train {

using namespace keys;

namespace {

std::string format_double(double d) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), d);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      out += esc;
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string keys::toml_value(const RunConfig& cfg, const Field& f) {
  const Value v = f.get(cfg);
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) return format_double(*d);
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* str = std::get_if<std::string>(&v)) return quote(*str);
  std::string out = "[";
  if (auto* l = std::get_if<std::vector<int64_t>>(&v))
    for (const auto i : *l) out += (out.size() > 1 ? ", " : "") + std::to_string(i);
  if (auto* l = std::get_if<std::vector<std::string>>(&v))
    for (const auto& i : *l) out += (out.size() > 1 ? ", " : "") + quote(i);
  return out + "]";
}

std::string to_toml(const RunConfig& cfg) {
  std::string out, section;
  for (const auto& f : fields()) {
    const std::string key = f.key;
    const auto dot = key.find('.');
    if (key.substr(0, dot) != section) {
      section = key.substr(0, dot);
      out += (out.empty() ? "[" : "\n[") + section + "]\n";
    }
    out += key.substr(dot + 1) + " = " + toml_value(cfg, f) + "\n";
  }
  return out;
}

nlohmann::json to_json(const RunConfig& cfg) {
  nlohmann::json j = nlohmann::json::object();
  j[kConfigVersionKey] = 2;
  for (const auto& f : fields()) {
    const std::string key = f.key;
    const auto dot = key.find('.');
    auto& slot = j[key.substr(0, dot)][key.substr(dot + 1)];
    std::visit([&slot](const auto& v) { slot = v; }, f.get(cfg));
  }
  return j;
}

}  // namespace lighthouse::train
