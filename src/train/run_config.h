// Run configuration of `lighthouse train`: one table of typed, dotted keys (run.*, model.*,
// lighthouse.*, train.*, optim.*, schedule.*, data.*, val.*, checkpoint.*, log.*, dist.*) read from
// TOML files, JSON (checkpoints) and `key=value` overrides. Unknown keys, wrong types and
// out-of-range values throw ConfigError with a one-line message that starts with the key.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/llama.h"

namespace lighthouse::train {

// A user error in a config file or flag; what() is one line naming the key.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The model of a run: the model's own configuration (which embeds lighthouse::Config) and what
// only a run reads. model.vocab_size = 0 (vocab here) means "from the data": the shards'
// header, 259 for bytes; to_model_config resolves it for a model built before the data is read.
struct RunModel : model::ModelConfig {
  std::string init;  // "" = random init; else a Hugging Face Llama directory
};

// The preset of `lighthouse train`, the tiny run: the values in which it differs from the
// model's and Lighthouse's own defaults (configs/tiny.toml lists the whole config).
RunModel tiny_model();

// Defaults are the tiny config: configs/tiny.toml lists exactly these values, and `lighthouse
// train` with no --config runs them. A --config file overrides them key by key.
struct RunConfig {
  struct Run {
    std::string name = "tiny";    // run directory prefix and log label
    std::string dir;              // "" = runs/<name>-<timestamp>
    std::string resume;           // "" = fresh run; else a run directory or checkpoint file
    std::string device = "auto";  // auto | cpu | cuda | cuda:N
    int64_t seed = 0;             // weights, data order, validation split
    int64_t threads = 0;          // intra-op CPU threads, 0 = libtorch default
    // Deterministic kernels (torch's deterministic algorithms: stock SDPA backward without
    // atomics, cuBLAS with a fixed workspace): two runs of one config give bitwise equal
    // weights on one GPU. Slower; see docs/training.md.
    bool deterministic = false;
  } run;
  // model.* keys and, in model.lighthouse / model.lighthouse_combine, the lighthouse.* keys.
  RunModel model = tiny_model();
  struct Train {
    int64_t steps = 240;
    int64_t stage1_steps = 180;            // Lighthouse steps before the dense tail
    // lighthouse (two-stage) | dense (dense from now on)
    model::AttentionMode attention = model::AttentionMode::Lighthouse;
    int64_t context = 2048, batch_size = 2, grad_accum = 1;
    std::string precision = "auto";  // auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    int64_t stop_at = 0;             // stop this invocation after that step (0 = steps)
    int64_t max_skipped_steps = 5;   // non-finite steps skipped in a row before the run stops
    // Stop after the step at which the run's summed optimizer-step time reaches this many
    // seconds (0 = no limit); a checkpoint is written there (`compare --budget time`).
    double time_limit_s = 0;
  } train;
  struct Optim {
    double lr = 3e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
    double clip = 1.0;  // global grad-norm clip, 0 = off
    bool decay_norms_and_embeddings = false;
    bool fused = true;  // CUDA: ATen's multi-tensor AdamW kernel (CPU: the per-tensor loop)
  } optim;
  struct Schedule {
    int64_t warmup_steps = 15;
    std::string decay = "cosine";  // cosine | linear | constant
    double min_lr_factor = 0.1;
    // Two-stage runs: the learning rate ramps linearly from lr/rewarmup_steps back to the
    // schedule over this many steps from the switch (train.stage1_steps); 0 = none.
    int64_t rewarmup_steps = 0;
  } schedule;
  struct Data {
    std::string source = "builtin";  // builtin | a text file, JSONL file or directory
    std::string text_key = "text";   // JSON Lines field holding the document
    int64_t max_document_bytes = int64_t{1} << 26;  // longest JSON Lines line (one document)
    std::string cache;               // "" = text held in memory; "run" = <run.dir>/tokens; a dir
    bool verify = true;              // shards: recompute CRC-32s and check ids when opened
    std::string tokenizer;  // "" = the shards' manifest's, else model.init's; a dir or .json
    int64_t bos_id = -1;    // -1 = the shards' manifest's, else model.init's config.json
    double val_fraction = 0.02;      // tail of the token stream held out
    int64_t val_tokens = 0;          // > 0: hold out ceil(val_tokens / context) sequences instead
    int64_t builtin_docs = 600;      // built-in corpus: number of documents
    int64_t builtin_doc_bytes = 0;   // built-in corpus: mean document size, 0 = context
    int64_t builtin_facts = 6;       // built-in corpus: key-value facts per document
    // Key->value records injected into every sequence, the retrieval task (docs/data.md,
    // SPEC.md §13): ids past the data's vocabulary, fresh per sequence, queried near its end.
    struct Needles {
      int64_t records = 0;        // records per sequence (queried + distractors + others), 0 = off
      int64_t queries = 4;        // queries per sequence, at its end, each of a distinct record
      int64_t key_length = 2;     // key tokens of a record
      int64_t value_length = 2;   // value tokens of a record
      int64_t symbols = 64;       // distinct ids per key token and per value token
      int64_t min_distance = 64;  // least tokens from a queried record to its query
      double distractors = 0.25;  // share of records whose key differs from a queried one in one token
    } needles;
  } data;
  struct Val {
    int64_t every = 60;   // steps between validation runs, 0 = off
    int64_t batches = 2;  // validation batches per run
    // Attention modes validated during stage 1 (after it: dense only). Only dense-mode losses
    // measure quality: Lighthouse's selection reads the whole tile, future tokens included.
    std::vector<model::AttentionMode> modes = {model::AttentionMode::Dense,
                                               model::AttentionMode::Lighthouse};
  } val;
  struct Checkpoint {
    int64_t every = 60;  // steps between checkpoints, 0 = only at the end
    int64_t keep = 2;    // newest checkpoints kept
  } checkpoint;
  struct Log {
    int64_t every = 10;    // steps between console loss lines
    bool progress = true;  // redraw a progress line on stderr
  } log;
  struct Dist {
    // Processes of the run: 0 = from the environment (torchrun's WORLD_SIZE), else 1; N > 1
    // without torchrun starts N local processes (dist/launch.h).
    int64_t world_size = 0;
    int64_t dp = 0;  // data-parallel degree, 0 = world size / cp
    int64_t cp = 1;  // context-parallel degree (only 1 today)
    int64_t timeout_s = 300;  // a collective waiting longer fails, naming the rank
    int64_t bucket_mb = 25;   // gradient all-reduce bucket size
  } dist;
};

// Applies a TOML document on top of cfg; `origin` names it in errors.
void apply_toml(RunConfig& cfg, const std::string& toml_text, const std::string& origin);
void apply_toml_file(RunConfig& cfg, const std::string& path);
// Applies a JSON object (as written by to_json) on top of cfg. A saved config without
// lighthouse.combine (written before the key existed) means the published "sum".
void apply_json(RunConfig& cfg, const nlohmann::json& j, const std::string& origin);
// `key=value` overrides in command-line order: --<key> flags and --set assignments.
using Overrides = std::vector<std::pair<std::string, std::string>>;

// The one resolution of a command's keys (train, bench, bench train, eval, compare): `base`
// (the command's preset), then the TOML file when `file` is not "", then the overrides in order.
RunConfig resolve_keys(RunConfig base, const std::string& file, const Overrides& overrides);

// Applies one `key=value` override (value in TOML-ish syntax: 3, 2e-3, true, dense, [0,1]).
void apply_override(RunConfig& cfg, const std::string& assignment);
// Applies a value given for one key (as a flag value).
void apply_value(RunConfig& cfg, const std::string& key, const std::string& value);
// "key = value" -> (key, value), both trimmed; throws ConfigError naming --set.
std::pair<std::string, std::string> split_assignment(const std::string& assignment);
// The candidate closest to `name` (edit distance <= 3, and below name's length), or "" if none:
// the "did you mean" of every unknown key, flag and command.
std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates);

// Throws ConfigError for the first out-of-range or inconsistent value, naming its key.
void validate(const RunConfig& cfg);
// Keys that may not change when resuming (would change data order or model shapes): throws
// ConfigError naming the first that differs between the checkpoint's config and the new one.
// The global batch (data-parallel degree x train.batch_size x train.grad_accum) may not
// change either; its factors may (a dp = 2 checkpoint resumes with dp = 1 or 4).
void check_resume_compatible(const RunConfig& saved, const RunConfig& now);
// Throws ConfigError naming train.batch_size when the global batch of `now` in a run of `world`
// processes differs from that of `saved` in a run of `saved_world`.
void check_resume_global_batch(const RunConfig& saved, int64_t saved_world, const RunConfig& now,
                               int64_t world);

std::string to_toml(const RunConfig& cfg);
nlohmann::json to_json(const RunConfig& cfg);

// Every key with its help text, in file order (for CLI flags and docs).
struct KeyInfo {
  std::string key, help;
};
std::vector<KeyInfo> all_keys();

// Sequences per optimizer step over all ranks: dp x train.batch_size x train.grad_accum, with
// dp resolved against `world` (the number of processes) when dist.dp is 0.
int64_t global_batch(const RunConfig& cfg, int64_t world);
// The data-parallel degree of `cfg` in a run of `world` processes; throws ConfigError naming
// dist.world_size, dist.dp or dist.cp when dp x cp != world.
int64_t resolve_dp(const RunConfig& cfg, int64_t world);

// The model configuration of a run: cfg.model with model.vocab_size = 0 resolved to the byte
// vocabulary (the data's vocabulary is set by launch.h's resolve_vocab before training).
model::ModelConfig to_model_config(const RunConfig& cfg);
// The reverse for what a Hugging Face config defines: sizes, vocabulary, norm epsilon, RoPE.
void apply_model_config(RunConfig& cfg, const model::ModelConfig& m);
// Throws ConfigError naming the first shape key (model.d_model, ..., model.vocab_size) whose
// value in cfg differs from m's; `origin` names where m comes from.
void check_model_shapes(const RunConfig& cfg, const model::ModelConfig& m,
                        const std::string& origin);

}  // namespace lighthouse::train
