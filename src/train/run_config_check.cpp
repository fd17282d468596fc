// Validation of a RunConfig (ranges and consistency, each error naming its key), resume
// compatibility, and its translation into the model's configuration.
#include <algorithm>
#include <cmath>
#include <cctype>
#include <charconv>
#include <initializer_list>
#include <thread>

#include "dist/context_parallel.h"
#include "train/needles.h"
#include "train/run_config_keys.h"

namespace lighthouse::train {
namespace {

using keys::cat;
using keys::fail;

bool parse_index(const std::string& s, int64_t* out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// dist.cp > 1 (SPEC.md §10): each rank holds 2 chunks of train.context tokens; the
// Lighthouse configuration must be chunk-local with tiles on chunk boundaries.
void check_context_parallel(const RunConfig& c) {
  const int64_t W = c.dist.cp;
  if (c.train.context % (2 * W) != 0)
    fail("dist.cp", cat("train.context = ", c.train.context, " must be a multiple of 2 x ",
                        "dist.cp = ", 2 * W, " (two equal chunks per rank), got dist.cp = ", W));
  if (c.train.attention != model::AttentionMode::Lighthouse) return;
  const std::string err = dist::check_context_parallel(to_model_config(c).lighthouse,
                                                       c.train.context, static_cast<int>(W));
  if (!err.empty()) fail("dist.cp", cat(W, " does not fit the Lighthouse layers: ", err));
}

}  // namespace

void validate(const RunConfig& c) {
  const auto& m = c.model;
  const auto positive = [](const char* key, int64_t v) {
    if (v <= 0) fail(key, cat("must be positive, got ", v));
  };
  const auto one_of = [](const char* key, const std::string& v,
                         std::initializer_list<const char*> ok) {
    std::string list;
    for (const char* o : ok) {
      if (v == o) return;
      list += (list.empty() ? "" : " | ") + std::string(o);
    }
    fail(key, cat("must be one of ", list, ", got \"", v, "\""));
  };
  const auto in_range = [](const char* key, double v, double lo, double hi, bool hi_open) {
    if (!(v >= lo && (hi_open ? v < hi : v <= hi)))
      fail(key, cat("must be in [", lo, ", ", hi, hi_open ? ")" : "]", ", got ", v));
  };

  const std::string& dev = c.run.device;
  int64_t dev_index = 0;
  if (!(dev == "auto" || dev == "cpu" || dev == "cuda" ||
        (dev.rfind("cuda:", 0) == 0 && parse_index(dev.substr(5), &dev_index) && dev_index >= 0)))
    fail("run.device", cat("must be auto | cpu | cuda | cuda:N, got \"", dev, "\""));
  const std::string& name = c.run.name;
  const bool name_ok =
      !name.empty() && name.size() <= 64 && name[0] != '.' && name[0] != '-' &&
      std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
      });
  if (!name_ok)
    fail("run.name", cat("must be 1 to 64 characters from A-Z a-z 0-9 . _ - (no path separators, "
                         "not starting with . or -), got \"",
                         name, "\""));
  if (c.run.seed < 0) fail("run.seed", cat("must be >= 0, got ", c.run.seed));
  if (c.run.threads < 0) fail("run.threads", cat("must be >= 0, got ", c.run.threads));
  if (c.run.deterministic && c.model.lighthouse.backend == SdpaBackend::Cudnn)
    fail("lighthouse.backend",
         "\"cudnn\" has no deterministic backward in torch; with run.deterministic = true use "
         "auto, flash, efficient or math");
  const int64_t cores = std::thread::hardware_concurrency();  // 0: unknown
  if (cores > 0 && c.run.threads > cores)
    fail("run.threads", cat("must be at most the ", cores, " CPU cores of this machine (0 = "
                            "libtorch's default), got ", c.run.threads));

  if (m.vocab < 0)
    fail("model.vocab_size", cat("must be in [0, 2^32] (0 = from the data), got ", m.vocab));
  const Issue issue = model::check(to_model_config(c));
  if (!issue.ok()) fail(issue.parameter, issue.message);

  const auto& t = c.train;
  positive("train.steps", t.steps);
  if (t.stage1_steps < 0 || t.stage1_steps > t.steps)
    fail("train.stage1_steps",
         cat("must be in [0, train.steps = ", t.steps, "], got ", t.stage1_steps));
  const bool two_stage = t.attention == model::AttentionMode::Lighthouse;
  if (two_stage && t.stage1_steps == 0)
    fail("train.stage1_steps",
         "must be > 0 when train.attention = \"lighthouse\" "
         "(use train.attention = \"dense\" for a dense run)");
  if (t.context < 2) fail("train.context", cat("must be >= 2, got ", t.context));
  const Config& lh = m.lighthouse;
  std::string err;
  positive("train.batch_size", t.batch_size);
  positive("train.grad_accum", t.grad_accum);
  one_of("train.precision", t.precision, {"auto", "bf16", "fp32"});
  if (t.precision == "bf16" && dev == "cpu")
    fail("train.precision",
         "bf16 autocast needs a CUDA device (run.device = \"cpu\" trains in fp32)");
  if (t.stop_at < 0 || t.stop_at > t.steps)
    fail("train.stop_at", cat("must be in [0, train.steps = ", t.steps, "], got ", t.stop_at));
  positive("train.max_skipped_steps", t.max_skipped_steps);
  if (!(t.time_limit_s >= 0) || !std::isfinite(t.time_limit_s))
    fail("train.time_limit_s", cat("must be a finite number >= 0 (0 = no limit), got ",
                                   t.time_limit_s));
  if (two_stage) {
    const auto dense = model::resolved_dense_layers(to_model_config(c));
    if (static_cast<int64_t>(dense.size()) >= m.n_layers)
      fail("model.dense_layers", cat("all ", m.n_layers,
                                     " layers are dense, so train.attention = "
                                     "\"lighthouse\" would change nothing"));
    Geometry g;
    if (!make_geometry(lh, t.context, &g, &err))
      fail("train.context", cat(t.context, " does not fit the Lighthouse config: ", err));
  }

  const auto& o = c.optim;
  if (!(o.lr > 0 && o.lr < 1)) fail("optim.lr", cat("must be in (0, 1), got ", o.lr));
  in_range("optim.beta1", o.beta1, 0, 1, true);
  in_range("optim.beta2", o.beta2, 0, 1, true);
  if (!(o.eps > 0 && o.eps < 1)) fail("optim.eps", cat("must be in (0, 1), got ", o.eps));
  in_range("optim.weight_decay", o.weight_decay, 0, 1, false);
  if (!(o.clip >= 0)) fail("optim.clip", cat("must be >= 0 (0 = off), got ", o.clip));

  if (c.schedule.warmup_steps < 0 || c.schedule.warmup_steps > t.steps)
    fail("schedule.warmup_steps",
         cat("must be in [0, train.steps = ", t.steps, "], got ", c.schedule.warmup_steps));
  one_of("schedule.decay", c.schedule.decay, {"cosine", "linear", "constant"});
  if (c.schedule.rewarmup_steps < 0 || c.schedule.rewarmup_steps > t.steps - t.stage1_steps)
    fail("schedule.rewarmup_steps",
         cat("must be in [0, train.steps - train.stage1_steps = ", t.steps - t.stage1_steps,
             "], got ", c.schedule.rewarmup_steps));
  in_range("schedule.min_lr_factor", c.schedule.min_lr_factor, 0, 1, false);

  if (c.data.source.empty()) fail("data.source", "must be \"builtin\" or a path");
  if (c.data.text_key.empty()) fail("data.text_key", "must not be empty");
  if (c.data.max_document_bytes < 1) fail("data.max_document_bytes", "must be >= 1");
  if (c.data.bos_id < -1)
    fail("data.bos_id", cat("must be a token id or -1 (unknown), got ", c.data.bos_id));
  in_range("data.val_fraction", c.data.val_fraction, 0, 0.5, false);
  if (c.data.val_tokens < 0)
    fail("data.val_tokens", cat("must be >= 0 (0 = data.val_fraction), got ", c.data.val_tokens));
  positive("data.builtin_docs", c.data.builtin_docs);
  if (c.data.builtin_doc_bytes < 0)
    fail("data.builtin_doc_bytes",
         cat("must be >= 0 (0 = train.context), got ", c.data.builtin_doc_bytes));
  if (c.data.builtin_facts < 1 || c.data.builtin_facts > 64)
    fail("data.builtin_facts", cat("must be in [1, 64], got ", c.data.builtin_facts));
  if (const auto [key, msg] = check_needles(c.data.needles, t.context); !key.empty())
    fail(key, msg);

  if (c.val.every < 0) fail("val.every", cat("must be >= 0 (0 = off), got ", c.val.every));
  positive("val.batches", c.val.batches);
  if (c.val.modes.empty())
    fail("val.modes", "must list at least one of \"dense\", \"lighthouse\", got []");
  for (size_t i = 0; i < c.val.modes.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (c.val.modes[j] == c.val.modes[i])
        fail("val.modes", cat("\"", model::mode_name(c.val.modes[i]), "\" is listed twice"));
  if (c.val.every > 0 && c.data.val_fraction == 0 && c.data.val_tokens == 0)
    fail("val.every", "validation needs data.val_fraction > 0 (or set val.every = 0)");
  if (c.checkpoint.every < 0)
    fail("checkpoint.every", cat("must be >= 0 (0 = only at the end), got ", c.checkpoint.every));
  positive("checkpoint.keep", c.checkpoint.keep);
  positive("log.every", c.log.every);
  if (c.dist.world_size < 0)
    fail("dist.world_size", cat("must be >= 0 (0 = from the environment), got ", c.dist.world_size));
  if (c.dist.dp < 0) fail("dist.dp", cat("must be >= 0 (0 = world size / dist.cp), got ", c.dist.dp));
  positive("dist.cp", c.dist.cp);
  if (c.dist.cp > 1) check_context_parallel(c);
  positive("dist.timeout_s", c.dist.timeout_s);
  positive("dist.bucket_mb", c.dist.bucket_mb);
}

int64_t resolve_dp(const RunConfig& c, int64_t world) {
  const int64_t dp = c.dist.dp > 0 ? c.dist.dp : world / c.dist.cp;
  if (dp * c.dist.cp != world)
    fail(c.dist.dp > 0 ? "dist.dp" : "dist.cp",
         cat("dist.dp x dist.cp must equal the world size ", world, ", got ", dp, " x ",
             c.dist.cp));
  return dp;
}

int64_t global_batch(const RunConfig& c, int64_t world) {
  return resolve_dp(c, world) * c.train.batch_size * c.train.grad_accum;
}

void check_resume_compatible(const RunConfig& saved, const RunConfig& now) {
  for (const auto& f : keys::fields()) {
    if (!f.frozen_on_resume) continue;
    const std::string a = keys::toml_value(saved, f), b = keys::toml_value(now, f);
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

RunModel tiny_model() {
  RunModel m;
  m.vocab = 0;  // from the data
  m.d_model = 128;
  m.n_kv_heads = 2;
  m.head_dim = 32;
  m.ffn_hidden = 384;
  m.dense_layers = {0, 3};
  m.lighthouse.topk = 64;  // context 2048: T = 4, C = 32 >= m = 16
  m.lighthouse.tile_topk = 16;
  m.lighthouse_combine = model::LighthouseCombine::Mean;  // docs/stability.md
  return m;
}

model::ModelConfig to_model_config(const RunConfig& c) {
  model::ModelConfig m = c.model;
  if (m.vocab == 0) m.vocab = model::kVocab + needle_id_count(c.data.needles);
  return m;
}

void apply_model_config(RunConfig& c, const model::ModelConfig& m) {
  c.model.vocab = m.vocab;
  c.model.d_model = m.d_model;
  c.model.n_layers = m.n_layers;
  c.model.n_heads = m.n_heads;
  c.model.n_kv_heads = m.n_kv_heads;
  c.model.head_dim = m.head_dim;
  c.model.ffn_hidden = m.ffn_hidden;
  c.model.rope_theta = m.rope_theta;
  c.model.norm_eps = m.norm_eps;
  c.model.rope_scaling = m.rope_scaling;
}

void check_model_shapes(const RunConfig& c, const model::ModelConfig& m,
                        const std::string& origin) {
  const std::pair<const char*, std::pair<int64_t, int64_t>> keys[] = {
      {"model.vocab_size", {c.model.vocab, m.vocab}},
      {"model.d_model", {c.model.d_model, m.d_model}},
      {"model.n_layers", {c.model.n_layers, m.n_layers}},
      {"model.n_heads", {c.model.n_heads, m.n_heads}},
      {"model.n_kv_heads", {c.model.n_kv_heads, m.n_kv_heads}},
      {"model.head_dim", {c.model.head_dim, m.head_dim}},
      {"model.ffn_hidden", {c.model.ffn_hidden, m.ffn_hidden}}};
  for (const auto& [key, v] : keys)
    if (v.first != v.second)
      fail(key, cat(v.first, " differs from ", v.second, " of ", origin,
                    " (the weights' shape; leave the key out, model.init sets it)"));
}

}  // namespace lighthouse::train
