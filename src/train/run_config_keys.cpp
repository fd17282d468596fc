// The key table of RunConfig: each dotted key with where its value lives, its kind, its help
// text and whether a resume may change it; key lookup with "did you mean", and typed stores.
#include "train/run_config_keys.h"

#include <algorithm>
#include <type_traits>

namespace lighthouse::train {
namespace keys {
namespace {

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

}  // namespace

const std::vector<Field>& fields() {
  static const std::vector<Field> f = {
      LH_KEY("run.name", run.name, false, "run label and run-directory prefix"),
      LH_KEY("run.dir", run.dir, false, "run directory (\"\" = runs/<name>-<time>)"),
      LH_KEY("run.resume", run.resume, false, "run directory or checkpoint to resume"),
      LH_KEY("run.device", run.device, false, "auto | cpu | cuda | cuda:N"),
      LH_KEY("run.seed", run.seed, true, "global seed: weights, data order, split"),
      LH_KEY("run.threads", run.threads, false, "CPU intra-op threads (0 = default)"),
      LH_KEY("run.deterministic", run.deterministic, false,
             "deterministic kernels: bitwise repeatable GPU runs, at a measured cost "
             "(docs/training.md)"),
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
      LH_KEY("model.recompute_lighthouse_layers", model.recompute_lighthouse_layers, false,
             "with activation_checkpointing: recompute Lighthouse layers too (false: dense "
             "layers only)"),
      LH_KEY("model.fused_kernels", model.fused_kernels, false,
             "fused CUDA kernels for SwiGLU, RoPE and residual add + RMSNorm (false = the "
             "at:: compositions; CPU runs those either way)"),
      LH_KEY("model.grouped_projections", model.grouped_projections, false,
             "q/k/v and gate/up projections as one autograd node each, the input gradient "
             "summed inside the matrix products (false = separate linears)"),
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
      LH_KEY("train.time_limit_s", train.time_limit_s, false,
             "stop after the step at which the summed optimizer-step time reaches this many "
             "seconds (0 = no limit)"),
      LH_KEY("optim.lr", optim.lr, false, "peak learning rate"),
      LH_KEY("optim.beta1", optim.beta1, false, "AdamW beta1"),
      LH_KEY("optim.beta2", optim.beta2, false, "AdamW beta2"),
      LH_KEY("optim.eps", optim.eps, false, "AdamW epsilon"),
      LH_KEY("optim.weight_decay", optim.weight_decay, false, "decoupled weight decay"),
      LH_KEY("optim.clip", optim.clip, false, "global grad-norm clip (0 = off)"),
      LH_KEY("optim.fused", optim.fused, false,
             "CUDA: one multi-tensor AdamW kernel per group (false: the per-tensor loop)"),
      LH_KEY("optim.decay_norms_and_embeddings", optim.decay_norms_and_embeddings, false,
             "apply weight decay to norms and embeddings too"),
      LH_KEY("schedule.warmup_steps", schedule.warmup_steps, false, "linear warmup steps"),
      LH_KEY("schedule.decay", schedule.decay, false, "cosine | linear | constant"),
      LH_KEY("schedule.min_lr_factor", schedule.min_lr_factor, false,
             "final lr as a fraction of optim.lr"),
      LH_KEY("schedule.rewarmup_steps", schedule.rewarmup_steps, false,
             "two-stage runs: linear re-warm-up of the lr over this many steps from the switch "
             "(train.stage1_steps; 0 = none)"),
      LH_KEY("data.source", data.source, true,
             "builtin | text file | JSONL file | directory (.gz allowed) | token-shard directory"),
      LH_KEY("data.text_key", data.text_key, true, "JSON Lines field with the text"),
      LH_KEY("data.max_document_bytes", data.max_document_bytes, false,
             "longest JSON Lines line (one document, held whole while parsed); a longer one is "
             "an error"),
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
      LH_KEY("data.val_tokens", data.val_tokens, true,
             "> 0: hold out ceil(val_tokens / train.context) sequences (the stream's tail) "
             "instead of data.val_fraction"),
      LH_KEY("data.builtin_docs", data.builtin_docs, true, "built-in corpus documents"),
      LH_KEY("data.builtin_doc_bytes", data.builtin_doc_bytes, true,
             "built-in corpus mean document bytes (0 = train.context)"),
      LH_KEY("data.builtin_facts", data.builtin_facts, true,
             "built-in corpus key-value facts per document"),
      LH_KEY("data.needles.records", data.needles.records, true,
             "key->value records injected per sequence (0 = no needles; docs/data.md)"),
      LH_KEY("data.needles.queries", data.needles.queries, true,
             "queries per sequence, at its end, each repeating a distinct record's key"),
      LH_KEY("data.needles.key_length", data.needles.key_length, true, "tokens per needle key"),
      LH_KEY("data.needles.value_length", data.needles.value_length, true,
             "tokens per needle value"),
      LH_KEY("data.needles.symbols", data.needles.symbols, true,
             "distinct ids per key token and per value token (reserved past the vocabulary)"),
      LH_KEY("data.needles.min_distance", data.needles.min_distance, true,
             "least tokens between a queried record and its query"),
      LH_KEY("data.needles.distractors", data.needles.distractors, true,
             "share of records whose key differs from a queried key in exactly one token"),
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
             "context-parallel degree (SPEC.md §10; ranks form a dist.dp x dist.cp mesh)"),
      LH_KEY("dist.timeout_s", dist.timeout_s, false,
             "seconds a collective may wait before the run fails, naming the rank"),
      LH_KEY("dist.bucket_mb", dist.bucket_mb, false, "gradient all-reduce bucket size, MiB"),
  };
  return f;
}
#undef LH_KEY
#undef LH_ENUM

namespace {

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

}  // namespace

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

void assign(RunConfig& cfg, const Field& f, const Value& v, const std::string& origin) {
  Value typed = v;
  if (f.kind == Kind::Float && std::holds_alternative<int64_t>(v))
    typed = static_cast<double>(std::get<int64_t>(v));
  if (typed.index() != static_cast<size_t>(f.kind))
    throw ConfigError(cat(f.key, ": expected ", kind_name(f.kind), " (", origin, ")"));
  f.set(cfg, typed);
}

}  // namespace keys

std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::min<size_t>(4, name.size());
  for (const auto& c : candidates) {
    const size_t d = keys::edit_distance(name, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

std::vector<KeyInfo> all_keys() {
  std::vector<KeyInfo> out;
  for (const auto& f : keys::fields()) out.push_back({f.key, f.help});
  return out;
}

}  // namespace lighthouse::train
