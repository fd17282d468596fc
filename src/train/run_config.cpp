// The key table of RunConfig and everything driven by it: TOML / JSON / override parsing with
// type checks, resume compatibility, and TOML / JSON serialization (validation and the model
// config: run_config_check.cpp).
#include "train/run_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <type_traits>
#include <variant>

namespace lighthouse::train {
namespace {

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

// The kind of a member type (its alternative in Value).
template <typename T>
constexpr Kind kind_of() {
  if constexpr (std::is_same_v<T, int64_t>) {
    return Kind::Int;
  } else if constexpr (std::is_same_v<T, double>) {
    return Kind::Float;
  } else if constexpr (std::is_same_v<T, bool>) {
    return Kind::Bool;
  } else if constexpr (std::is_same_v<T, std::string>) {
    return Kind::String;
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    return Kind::IntList;
  } else {
    static_assert(std::is_same_v<T, std::vector<std::string>>, "a key's member has no Kind");
    return Kind::StringList;
  }
}

// A key stored as a plain member; `ptr` maps a config to that member.
template <typename Ptr>
Field member_field(const char* key, bool frozen, const char* help, Ptr ptr) {
  using T = std::remove_pointer_t<decltype(ptr(std::declval<RunConfig&>()))>;
  return {key, kind_of<T>(), help, frozen,
          [ptr](const RunConfig& c) -> Value { return *ptr(const_cast<RunConfig&>(c)); },
          [ptr](RunConfig& c, const Value& v) { *ptr(c) = std::get<T>(v); }};
}

// A key stored as an enum owned by its component, written as the component's name for it;
// `parse` sets its error message (naming the choices) for a name it does not know.
template <typename Ptr, typename E>
Field enum_field(const char* key, bool frozen, const char* help, Ptr ptr,
                 E (*parse)(const std::string&, std::string*), std::string (*name)(E)) {
  return {key, Kind::String, help, frozen,
          [ptr, name](const RunConfig& c) -> Value {
            return name(*ptr(const_cast<RunConfig&>(c)));
          },
          [key, ptr, parse](RunConfig& c, const Value& v) {
            std::string err;
            const E e = parse(std::get<std::string>(v), &err);
            if (!err.empty()) throw ConfigError(std::string(key) + ": " + err);
            *ptr(c) = e;
          }};
}

#define LH_KEY(key, member, frozen, help) \
  member_field(key, frozen, help, [](RunConfig& c) { return &c.member; })
#define LH_ENUM(key, member, parse, name, frozen, help) \
  enum_field(key, frozen, help, [](RunConfig& c) { return &c.member; }, parse, name)

// model.rope_scaling: "none" | "llama3", stored as RopeScaling::enabled.
Field rope_scaling_field() {
  return {"model.rope_scaling", Kind::String,
          "none | llama3 (RoPE frequency scaling of Llama 3.1)", true,
          [](const RunConfig& c) -> Value {
            return std::string(c.model.rope_scaling.enabled ? "llama3" : "none");
          },
          [](RunConfig& c, const Value& v) {
            const std::string& s = std::get<std::string>(v);
            if (s != "none" && s != "llama3")
              throw ConfigError("model.rope_scaling: must be one of none | llama3, got \"" + s +
                                "\"");
            c.model.rope_scaling.enabled = s == "llama3";
          }};
}

// model.dense_layers: absent = the default {0, 1, n-2, n-1}, written out as that list; [] = none.
Field dense_layers_field() {
  return {"model.dense_layers", Kind::IntList,
          "always-dense layers (absent = [0, 1, n-2, n-1]; [] = none: Lighthouse in every layer)",
          true,
          [](const RunConfig& c) -> Value {
            return c.model.dense_layers.value_or(model::default_dense_layers(c.model.n_layers));
          },
          [](RunConfig& c, const Value& v) {
            c.model.dense_layers = std::get<std::vector<int64_t>>(v);
          }};
}

// val.modes: a list of attention-mode names.
Field val_modes_field() {
  return {"val.modes", Kind::StringList,
          "attention modes validated in stage 1 (dense | lighthouse; dense only after)", false,
          [](const RunConfig& c) -> Value {
            std::vector<std::string> names;
            for (const auto m : c.val.modes) names.push_back(model::mode_name(m));
            return names;
          },
          [](RunConfig& c, const Value& v) {
            std::vector<model::AttentionMode> modes;
            for (const auto& name : std::get<std::vector<std::string>>(v)) {
              std::string err;
              modes.push_back(model::parse_mode(name, &err));
              if (!err.empty())
                throw ConfigError("val.modes: must be one of dense | lighthouse, got \"" + name +
                                  "\"");
            }
            c.val.modes = modes;
          }};
}

const std::vector<Field>& fields() {
  static const std::vector<Field> f = {
      LH_KEY("run.name", run.name, false, "run label and run-directory prefix"),
      LH_KEY("run.dir", run.dir, false, "run directory (\"\" = runs/<name>-<time>)"),
      LH_KEY("run.resume", run.resume, false, "run directory or checkpoint to resume"),
      LH_KEY("run.device", run.device, false, "auto | cpu | cuda | cuda:N"),
      LH_KEY("run.seed", run.seed, true, "global seed: weights, data order, split"),
      LH_KEY("run.threads", run.threads, false, "CPU intra-op threads (0 = default)"),
      LH_KEY("model.d_model", model.d_model, true, "residual width"),
      LH_KEY("model.n_layers", model.n_layers, true, "decoder layers"),
      LH_KEY("model.n_heads", model.n_heads, true, "query heads"),
      LH_KEY("model.n_kv_heads", model.n_kv_heads, true, "KV heads (GQA when < n_heads)"),
      LH_KEY("model.head_dim", model.head_dim, true, "head dimension"),
      LH_KEY("model.ffn_hidden", model.ffn_hidden, true, "SwiGLU hidden size"),
      LH_KEY("model.rope_theta", model.rope_theta, true, "RoPE base"),
      LH_KEY("model.norm_eps", model.norm_eps, true, "RMSNorm epsilon"),
      dense_layers_field(),
      LH_KEY("model.activation_checkpointing", model.activation_checkpointing, false,
             "recompute layer activations in backward"),
      LH_KEY("model.fused_kernels", model.fused_kernels, false,
             "fused CUDA kernels for SwiGLU, RoPE and residual add + RMSNorm (false = the "
             "at:: compositions; CPU runs those either way)"),
      LH_KEY("model.vocab_size", model.vocab, true,
             "vocabulary (0 = from the data: the shards' header, 259 for bytes)"),
      LH_KEY("model.init", model.init, false,
             "Hugging Face Llama directory a fresh run starts from (\"\" = random init)"),
      rope_scaling_field(),
      LH_KEY("model.rope_scaling_factor", model.rope_scaling.factor, true,
             "llama3 RoPE scaling: factor"),
      LH_KEY("model.rope_low_freq_factor", model.rope_scaling.low_freq_factor, true,
             "llama3 RoPE scaling: low_freq_factor"),
      LH_KEY("model.rope_high_freq_factor", model.rope_scaling.high_freq_factor, true,
             "llama3 RoPE scaling: high_freq_factor"),
      LH_KEY("model.rope_original_context", model.rope_scaling.original_context, true,
             "llama3 RoPE scaling: original_max_position_embeddings"),
      LH_KEY("lighthouse.levels", model.lighthouse.levels, false, "pyramid levels L"),
      LH_KEY("lighthouse.pool", model.lighthouse.pool, false, "pooling factor p"),
      LH_KEY("lighthouse.topk", model.lighthouse.topk, false, "per-level budget k"),
      LH_KEY("lighthouse.tile_topk", model.lighthouse.tile_topk, false, "per-tile budget m"),
      LH_ENUM("lighthouse.scorer", model.lighthouse.scorer, parse_scorer, scorer_name, false,
              "selection scores: norm | dilated (SPEC.md §4)"),
      LH_KEY("lighthouse.dilation", model.lighthouse.dilation, false,
             "dilated scorer: strided sub-sequences delta (divides train.context)"),
      LH_ENUM("lighthouse.backend", model.lighthouse.backend, parse_backend, backend_name, false,
              "SDPA backend: auto | cudnn | flash | efficient | math"),
      LH_ENUM("lighthouse.combine", model.lighthouse_combine, model::parse_combine,
              model::combine_name, false,
              "per-position combination of the scatter's contributions: sum | mean"),
      LH_ENUM("lighthouse.selection", model.lighthouse.selection, parse_selection, selection_name,
              false, "per-tile selection rule: causal (SPEC.md §12, the default) | stratified (published)"),
      LH_KEY("train.steps", train.steps, false, "optimizer steps of the whole run"),
      LH_KEY("train.stage1_steps", train.stage1_steps, false,
             "steps with Lighthouse in non-dense layers before the dense tail"),
      LH_ENUM("train.attention", train.attention, model::parse_mode, model::mode_name, false,
              "lighthouse (two-stage) | dense (dense from now on)"),
      LH_KEY("train.context", train.context, true, "tokens per sequence"),
      LH_KEY("train.batch_size", train.batch_size, false,
             "sequences per micro-batch and rank"),
      LH_KEY("train.grad_accum", train.grad_accum, false, "micro-batches per step"),
      LH_KEY("train.precision", train.precision, false, "auto | bf16 | fp32"),
      LH_KEY("train.stop_at", train.stop_at, false,
             "stop this invocation after that step (0 = train.steps)"),
      LH_KEY("train.max_skipped_steps", train.max_skipped_steps, false,
             "steps with a non-finite loss or gradient skipped in a row before the run stops"),
      LH_KEY("optim.lr", optim.lr, false, "peak learning rate"),
      LH_KEY("optim.beta1", optim.beta1, false, "AdamW beta1"),
      LH_KEY("optim.beta2", optim.beta2, false, "AdamW beta2"),
      LH_KEY("optim.eps", optim.eps, false, "AdamW epsilon"),
      LH_KEY("optim.weight_decay", optim.weight_decay, false, "decoupled weight decay"),
      LH_KEY("optim.clip", optim.clip, false, "global grad-norm clip (0 = off)"),
      LH_KEY("optim.decay_norms_and_embeddings", optim.decay_norms_and_embeddings, false,
             "apply weight decay to norms and embeddings too"),
      LH_KEY("schedule.warmup_steps", schedule.warmup_steps, false, "linear warmup steps"),
      LH_KEY("schedule.decay", schedule.decay, false, "cosine | linear | constant"),
      LH_KEY("schedule.min_lr_factor", schedule.min_lr_factor, false,
             "final lr as a fraction of optim.lr"),
      LH_KEY("data.source", data.source, true,
             "builtin | text file | JSONL file | directory (.gz allowed) | token-shard directory"),
      LH_KEY("data.text_key", data.text_key, true, "JSON Lines field with the text"),
      LH_KEY("data.cache", data.cache, false,
             "text sources: \"\" = in memory; \"run\" = <run.dir>/tokens; or a directory of "
             "byte-token shards converted once"),
      LH_KEY("data.verify", data.verify, false,
             "token shards: recompute each shard's CRC-32 and check its ids when opened"),
      LH_KEY("data.tokenizer", data.tokenizer, false,
             "tokenizer of the shards (tokenizer.json or a directory), copied by export (\"\" = "
             "the manifest's, else model.init's)"),
      LH_KEY("data.bos_id", data.bos_id, false,
             "BOS id written by export (-1 = the manifest's, else model.init's config.json)"),
      LH_KEY("data.val_fraction", data.val_fraction, true,
             "fraction of sequences (the stream's tail) held out for validation"),
      LH_KEY("data.builtin_docs", data.builtin_docs, true, "built-in corpus documents"),
      LH_KEY("data.builtin_doc_bytes", data.builtin_doc_bytes, true,
             "built-in corpus mean document bytes (0 = train.context)"),
      LH_KEY("data.builtin_facts", data.builtin_facts, true,
             "built-in corpus key-value facts per document"),
      LH_KEY("val.every", val.every, false, "steps between validation runs (0 = off)"),
      LH_KEY("val.batches", val.batches, false, "batches per validation run"),
      val_modes_field(),
      LH_KEY("checkpoint.every", checkpoint.every, false,
             "steps between checkpoints (0 = only at the end)"),
      LH_KEY("checkpoint.keep", checkpoint.keep, false, "newest checkpoints kept"),
      LH_KEY("log.every", log.every, false, "steps between console loss lines"),
      LH_KEY("log.progress", log.progress, false, "progress line on stderr"),
      LH_KEY("dist.world_size", dist.world_size, false,
             "processes (0 = torchrun's WORLD_SIZE, else 1; N > 1 starts N local ranks)"),
      LH_KEY("dist.dp", dist.dp, false, "data-parallel degree (0 = world size / dist.cp)"),
      LH_KEY("dist.cp", dist.cp, false,
             "context-parallel degree (SPEC.md §10; dist.dp must be 1 when > 1)"),
      LH_KEY("dist.timeout_s", dist.timeout_s, false,
             "seconds a collective may wait before the run fails, naming the rank"),
      LH_KEY("dist.bucket_mb", dist.bucket_mb, false, "gradient all-reduce bucket size, MiB"),
  };
  return f;
}
#undef LH_KEY
#undef LH_ENUM

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

const Field& find_field(const std::string& raw_key, const std::string& origin) {
  const std::string key = trim(raw_key);
  std::vector<std::string> names;
  for (const auto& f : fields()) {
    if (key == f.key) return f;
    names.push_back(f.key);
  }
  const std::string best = did_you_mean(key, names);
  throw ConfigError(cat(key, ": unknown key (", origin, ")",
                        best.empty() ? std::string() : cat("; did you mean ", best, "?")));
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Int:
      return "an integer";
    case Kind::Float:
      return "a number";
    case Kind::Bool:
      return "true or false";
    case Kind::String:
      return "a string";
    case Kind::IntList:
      return "a list of integers";
    case Kind::StringList:
      return "a list of strings";
  }
  return "?";
}

// v converted to f's kind (an integer is a valid number) and stored; throws naming the key.
void assign(RunConfig& cfg, const Field& f, const Value& v, const std::string& origin) {
  Value typed = v;
  if (f.kind == Kind::Float && std::holds_alternative<int64_t>(v))
    typed = static_cast<double>(std::get<int64_t>(v));
  if (typed.index() != static_cast<size_t>(f.kind))
    throw ConfigError(cat(f.key, ": expected ", kind_name(f.kind), " (", origin, ")"));
  f.set(cfg, typed);
}

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

// The TOML text of one value (also used to compare and report values).
std::string toml_value(const RunConfig& cfg, const Field& f) {
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

// Top-level member of to_json's object: 2 since an empty model.dense_layers means none.
constexpr const char* kConfigVersionKey = "config_version";

[[noreturn]] void fail(const std::string& key, const std::string& msg) {
  throw ConfigError(key + ": " + msg);
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
  nlohmann::json keys = j;
  const bool before_v2 = !keys.is_object() || !keys.contains(kConfigVersionKey);
  if (!before_v2) keys.erase(kConfigVersionKey);
  walk_json(cfg, keys, "", origin);
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

std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::min<size_t>(4, name.size());
  for (const auto& c : candidates) {
    const size_t d = edit_distance(name, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
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

void check_resume_compatible(const RunConfig& saved, const RunConfig& now) {
  for (const auto& f : fields()) {
    if (!f.frozen_on_resume) continue;
    const std::string a = toml_value(saved, f), b = toml_value(now, f);
    if (a != b)
      fail(f.key, cat("cannot change when resuming (checkpoint has ", a, ", got ", b, ")"));
  }
}

void check_resume_global_batch(const RunConfig& saved, int64_t saved_world, const RunConfig& now,
                               int64_t world) {
  const int64_t a = global_batch(saved, saved_world), b = global_batch(now, world);
  if (a != b)
    fail("train.batch_size",
         cat("dp x train.batch_size x train.grad_accum (the global batch) cannot change when "
             "resuming (checkpoint has ", a, " sequences per step, got ", resolve_dp(now, world),
             " x ", now.train.batch_size, " x ", now.train.grad_accum, " = ", b,
             "); keep the product when changing dist.dp"));
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

std::vector<KeyInfo> all_keys() {
  std::vector<KeyInfo> out;
  for (const auto& f : fields()) out.push_back({f.key, f.help});
  return out;
}

}  // namespace lighthouse::train
