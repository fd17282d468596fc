// Reading RunConfig: TOML documents and files, JSON objects (saved configs, with the upgrades
// of configs written before a key existed) and `key=value` text, each value type-checked
// against its key's kind (the key table: run_config_keys.cpp).
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "train/run_config_keys.h"

namespace lighthouse::train {

using namespace keys;

namespace {

bool parse_int(std::string s, int64_t* out) {
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (!s.empty() && s[0] == '+') s.erase(0, 1);
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_float(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*out);
}

// A flag value for field f: parsed by the field's kind, so `--set run.name=42` is a string.
Value parse_text(const Field& f, const std::string& raw) {
  const std::string s = trim(raw);
  const auto bad = [&] {
    return ConfigError(cat(f.key, ": expected ", kind_name(f.kind), ", got \"", s, "\""));
  };
  switch (f.kind) {
    case Kind::Int: {
      int64_t i;
      if (!parse_int(s, &i)) throw bad();
      return i;
    }
    case Kind::Float: {
      double d;
      if (!parse_float(s, &d)) throw bad();
      return d;
    }
    case Kind::Bool:
      if (s == "true") return true;
      if (s == "false") return false;
      throw bad();
    case Kind::String:
      if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
        return s.substr(1, s.size() - 2);
      return s;
    case Kind::IntList:
    case Kind::StringList: {
      std::string body = s;
      if (!body.empty() && body.front() == '[') {
        if (body.back() != ']') throw bad();
        body = body.substr(1, body.size() - 2);
      }
      std::vector<int64_t> ints;
      std::vector<std::string> strings;
      std::stringstream ss(body);
      std::string item;
      while (std::getline(ss, item, ',')) {
        item = trim(item);
        if (f.kind == Kind::StringList) {
          if (item.size() >= 2 && (item.front() == '"' || item.front() == '\'') &&
              item.back() == item.front())
            item = item.substr(1, item.size() - 2);
          if (item.empty()) throw bad();
          strings.push_back(item);
          continue;
        }
        int64_t i;
        if (!parse_int(item, &i)) throw bad();
        ints.push_back(i);
      }
      if (f.kind == Kind::StringList) return strings;
      return ints;
    }
  }
  throw bad();
}

Value from_toml(const Field& f, const toml::node& n, const std::string& where) {
  if (auto v = n.as_integer()) return v->get();
  if (auto v = n.as_floating_point()) return v->get();
  if (auto v = n.as_boolean()) return v->get();
  if (auto v = n.as_string()) return v->get();
  if (auto arr = n.as_array()) {
    if (f.kind == Kind::StringList) {
      std::vector<std::string> out;
      for (const auto& e : *arr) {
        auto str = e.as_string();
        if (!str) throw ConfigError(cat(f.key, ": expected a list of strings (", where, ")"));
        out.push_back(str->get());
      }
      return out;
    }
    std::vector<int64_t> out;
    for (const auto& e : *arr) {
      auto i = e.as_integer();
      if (!i) throw ConfigError(cat(f.key, ": expected a list of integers (", where, ")"));
      out.push_back(i->get());
    }
    return out;
  }
  throw ConfigError(cat(f.key, ": expected ", kind_name(f.kind), " (", where, ")"));
}

void walk_toml(RunConfig& cfg, const toml::table& t, const std::string& prefix,
               const std::string& origin) {
  for (const auto& [k, node] : t) {
    const std::string key =
        prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto sub = node.as_table()) {
      walk_toml(cfg, *sub, key, origin);
      continue;
    }
    const std::string where = cat(origin, ":", node.source().begin.line);
    const Field& f = find_field(key, where);
    assign(cfg, f, from_toml(f, node, where), where);
  }
}

void walk_json(RunConfig& cfg, const nlohmann::json& j, const std::string& prefix,
               const std::string& origin) {
  for (const auto& [k, v] : j.items()) {
    const std::string key = prefix.empty() ? k : prefix + "." + k;
    if (v.is_object()) {
      walk_json(cfg, v, key, origin);
      continue;
    }
    const Field& f = find_field(key, origin);
    Value val;
    if (v.is_number_integer())
      val = v.get<int64_t>();
    else if (v.is_number_float())
      val = v.get<double>();
    else if (v.is_boolean())
      val = v.get<bool>();
    else if (v.is_string())
      val = v.get<std::string>();
    else if (v.is_array() && f.kind == Kind::StringList &&
             std::all_of(v.begin(), v.end(), [](auto& e) { return e.is_string(); }))
      val = v.get<std::vector<std::string>>();
    else if (v.is_array() &&
             std::all_of(v.begin(), v.end(), [](auto& e) { return e.is_number_integer(); }))
      val = v.get<std::vector<int64_t>>();
    else
      throw ConfigError(cat(f.key, ": expected ", kind_name(f.kind), " (", origin, ")"));
    assign(cfg, f, val, origin);
  }
}

}  // namespace

void apply_toml(RunConfig& cfg, const std::string& text, const std::string& origin) {
  toml::table t;
  try {
    t = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    throw ConfigError(cat(origin, ":", e.source().begin.line,
                          ": TOML syntax error: ", std::string(e.description())));
  }
  walk_toml(cfg, t, "", origin);
}

void apply_toml_file(RunConfig& cfg, const std::string& path) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    if (e.source().begin.line == 0)  // toml++ reports unreadable files without a position
      throw ConfigError(cat("--config: cannot read ", path, ": ", std::string(e.description())));
    throw ConfigError(cat(path, ":", e.source().begin.line,
                          ": TOML syntax error: ", std::string(e.description())));
  }
  walk_toml(cfg, t, "", path);
}

void apply_json(RunConfig& cfg, const nlohmann::json& j, const std::string& origin) {
  // A saved config from before lighthouse.combine existed was trained with the published sum.
  const auto lh = j.find("lighthouse");
  if (lh != j.end() && lh->is_object() && !lh->contains("combine"))
    cfg.model.lighthouse_combine = model::LighthouseCombine::Sum;
  nlohmann::json values = j;
  const bool before_v2 = !values.is_object() || !values.contains(kConfigVersionKey);
  if (!before_v2) values.erase(kConfigVersionKey);
  walk_json(cfg, values, "", origin);
  // One from before lighthouse.selection existed was trained with the published stratified rule.
  if (lh != j.end() && lh->is_object() && !lh->contains("selection"))
    cfg.model.lighthouse.selection = Selection::Stratified;
  // Before version 2 an empty model.dense_layers meant the default; now it means none.
  if (before_v2 && cfg.model.dense_layers && cfg.model.dense_layers->empty()) {
    const auto m = j.find("model");
    if (m != j.end() && m->is_object() && m->contains("dense_layers"))
      cfg.model.dense_layers = std::nullopt;
  }
}

std::pair<std::string, std::string> split_assignment(const std::string& assignment) {
  const auto eq = assignment.find('=');
  const std::string key = eq == std::string::npos ? "" : trim(assignment.substr(0, eq));
  if (key.empty()) throw ConfigError(cat("--set: expected key=value, got \"", assignment, "\""));
  return {key, trim(assignment.substr(eq + 1))};
}

RunConfig resolve_keys(RunConfig base, const std::string& file, const Overrides& overrides) {
  if (!file.empty()) apply_toml_file(base, file);
  for (const auto& [k, v] : overrides) apply_value(base, k, v);
  return base;
}

void apply_override(RunConfig& cfg, const std::string& assignment) {
  const auto [key, value] = split_assignment(assignment);
  apply_value(cfg, key, value);
}

void apply_value(RunConfig& cfg, const std::string& key, const std::string& value) {
  const Field& f = find_field(key, "--set");
  assign(cfg, f, parse_text(f, value), "command line");
}

}  // namespace lighthouse::train
