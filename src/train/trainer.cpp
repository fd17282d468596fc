// Session setup and resume, the optimizer step, validation, checkpoint saving and the logged
// training loop (trainer.h).
#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>

#include "model/export.h"
#include "model/layers.h"
#include "train/checkpoint.h"
#include "dist/data_parallel.h"
#include "train/device.h"
#include "train/distributed.h"
#include "train/failure.h"
#include "train/interrupt.h"
#include "train/launch.h"
#include "train/loss.h"
#include "train/metrics.h"
#include "train/needles.h"
#include "train/optim.h"
#include "train/rng.h"
#include "train/run_lock.h"

namespace lighthouse::train {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// <run>/checkpoints/step-N.ckpt -> <run>; a checkpoint elsewhere -> its folder.

std::string default_run_dir(const RunConfig& cfg) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/" + cfg.run.name + "-" + stamp;
}

std::string format_count(double x) {
  char buf[32];
  if (x >= 1e9)
    std::snprintf(buf, sizeof(buf), "%.2fG", x / 1e9);
  else if (x >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.2fM", x / 1e6);
  else if (x >= 1e3)
    std::snprintf(buf, sizeof(buf), "%.1fk", x / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.0f", x);
  return buf;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (const auto x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
  return s.empty() ? "none" : s;
}

// Every parameter's gradient set to none: the optimizer's zero_grad reaches only its own
// parameters, a ZeRO-1 shard.
void drop_gradients(const std::vector<at::Tensor>& params) {
  for (const auto& p : params) p.mutable_grad().reset();
}

at::Tensor batch_loss(Session& s, const at::Tensor& batch) {  // batch [B, N + 1]
  return next_token_loss(s.model, batch, s.device, s.bf16, s.cp_group.get());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// A finite number as itself, else its name ("nan", "inf", "-inf"), for metrics.jsonl.
nlohmann::json number(double x) {
  if (std::isfinite(x)) return x;
  return std::isnan(x) ? "nan" : x > 0 ? "inf" : "-inf";
}

// A step skipped for a non-finite loss or gradient norm: a "skip" record, a console line and,
// at train.max_skipped_steps in a row, the error that stops the run.
void report_skip(const Session& s, const StepStats& st, MetricsLog& metrics,
                 const std::function<void(const std::string&)>& say) {
  const double value = st.skipped == "loss" ? st.loss : st.grad_norm;
  const std::string what = st.skipped + " is " + number(value).get<std::string>();
  metrics.write({{"type", "skip"},
                 {"step", st.step},
                 {"quantity", st.skipped},
                 {"loss", number(st.loss)},
                 {"grad_norm", number(st.grad_norm)},
                 {"in_a_row", s.consecutive_skips},
                 {"skipped_steps", s.skipped_steps},
                 {"attention", mode_name(st.mode)}});
  const int64_t limit = s.cfg.train.max_skipped_steps;
  say("step " + std::to_string(st.step) + ": skipped, " + what +
      " (weights and optimizer state unchanged; " + std::to_string(s.consecutive_skips) +
      " in a row of at most train.max_skipped_steps = " + std::to_string(limit) + ")");
  if (s.consecutive_skips >= limit)
    throw std::runtime_error("train: step " + std::to_string(st.step) + ": " + what + "; " +
                             std::to_string(s.consecutive_skips) +
                             " steps in a row skipped for a non-finite loss or gradient norm "
                             "(train.max_skipped_steps = " +
                             std::to_string(limit) + "); try a lower optim.lr");
}

}  // namespace

model::AttentionMode mode_at(const RunConfig& cfg, int64_t step) {
  return cfg.train.attention == model::AttentionMode::Lighthouse && step < cfg.train.stage1_steps
             ? model::AttentionMode::Lighthouse
             : model::AttentionMode::Dense;
}

std::unique_ptr<Session> open_session(const Launch& launch) {
  const dist::LaunchEnv env = dist::launch_env();
  auto [cfg, ck, ck_path, init] = resolve(launch, env);
  if (cfg.run.dir.empty()) cfg.run.dir = default_run_dir(cfg);

  auto s = std::make_unique<Session>();
  s->device = resolve_device(cfg);
  s->bf16 = use_bf16(cfg, s->device);
  set_deterministic(cfg.run.deterministic, s->device);
  if (cfg.run.threads > 0) at::set_num_threads(static_cast<int>(cfg.run.threads));
  s->run_dir = cfg.run.dir;
  s->group = join_group(cfg, env, s->device);
  s->dp = resolve_dp(cfg, env.world);
  s->cp = cfg.dist.cp;
  s->cp_group = join_cp_group(s->group, s->dp, s->cp);
  // The shapes against the memory left, before anything is allocated: once with the vocabulary
  // the config names (an absurd train.context stops here, before the data is built), then
  // with the data's.
  check_memory_fits(cfg, s->dp, s->device, available_host_memory());

  s->data = load_dataset(cfg, launch.data_progress);
  resolve_vocab(cfg, s->data, ck_path);
  check_memory_fits(cfg, s->dp, s->device, available_host_memory());
  s->vocab = resolve_vocabulary(cfg, s->data);
  if (ck && ck->meta.contains("data_vocab_size") &&
      ck->meta.at("data_vocab_size").get<int64_t>() != s->data.vocab_size)
    throw ConfigError("data.source: " + cfg.data.source + " has vocab_size " +
                      std::to_string(s->data.vocab_size) + ", the checkpoint " + ck_path +
                      " was trained on data with vocab_size " +
                      std::to_string(ck->meta.at("data_vocab_size").get<int64_t>()));

  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  try {
    s->model = model::Llama(to_model_config(cfg));  // initialized on CPU: same on any device
    if (init) load_init_weights(s->model, *init, cfg.model.init);
    s->model->to(s->device);
    if (s->cp_group) model::set_context_parallel(*s->model, s->cp_group.get());
    if (s->group) s->owners = dist::shard_owners(s->model->parameters(), s->group->size());
    s->opt = make_optimizer(*s->model, cfg, s->owners, s->rank());
  } catch (const ConfigError&) {
    throw;
  } catch (const c10::Error& e) {  // out of memory, or a size beyond the allocator
    throw_model_oom(cfg, e);
  } catch (const std::bad_alloc& e) {
    throw_model_oom(cfg, e);
  }
  s->params = s->model->parameters();
  if (s->group)
    s->averager = std::make_unique<dist::OverlappedAverager>(*s->group, s->params,
                                                             cfg.dist.bucket_mb << 20);

  const uint64_t seed = static_cast<uint64_t>(cfg.run.seed);
  s->train_loader = std::make_unique<SequenceLoader>(s->data.train, cfg.train.context,
                                                     mix_seed(seed, 0x7a1), /*shuffle=*/true);
  if (!s->data.val.empty())
    s->val_loader = std::make_unique<SequenceLoader>(s->data.val, cfg.train.context, 0, false);
  if (cfg.data.needles.records > 0) {  // the same needles for both runs of a pair (needles.h)
    const NeedleIds ids{s->data.vocab_size, cfg.data.needles.symbols};
    s->train_loader->set_hook(needle_hook(cfg.data.needles, ids, NeedleStream::Train, seed));
    if (s->val_loader)
      s->val_loader->set_hook(needle_hook(cfg.data.needles, ids, NeedleStream::Validation, 0));
  }

  if (ck) {
    restore_model(*ck, *s->model, ck_path);
    restore_optimizer(*ck, *s->model, *s->opt, ck_path);
    restore_rng(*ck);
    s->step = ck->meta.at("step").get<int64_t>();
    s->tokens = ck->meta.at("tokens").get<int64_t>();
    s->train_loader->seek(ck->meta.at("data_cursor").get<uint64_t>());
    s->saved_mode = ck->meta.at("attention").get<std::string>();
    s->skipped_steps = ck->meta.value("skipped_steps", int64_t{0});
    s->consecutive_skips = ck->meta.value("consecutive_skips", int64_t{0});
    s->train_time_s = ck->meta.value("train_time_s", 0.0);
    s->resumed_from = ck_path;
    if (s->step > cfg.train.steps)
      throw ConfigError("train.steps: " + std::to_string(cfg.train.steps) + " is below the step " +
                        std::to_string(s->step) + " of the checkpoint " + ck_path);
    if (cfg.train.stop_at > 0 && cfg.train.stop_at <= s->step)
      throw ConfigError("train.stop_at: must be after the checkpoint's step " +
                        std::to_string(s->step) + " (" + ck_path + "), got " +
                        std::to_string(cfg.train.stop_at));
  }
  s->cfg = cfg;
  return s;
}

StepStats train_step(Session& s, std::optional<model::AttentionMode> mode) {
  StepStats st;
  st.mode = mode.value_or(mode_at(s.cfg, s.step));
  if (s.model->attention_mode() != st.mode) s.model->set_attention_mode(st.mode);
  st.lr = lr_at(s.cfg, s.step);
  set_hyperparameters(*s.opt, s.cfg, st.lr);

  synchronize(s.device);
  reset_peak_memory(s.device);
  const auto t0 = Clock::now();
  drop_gradients(s.params);
  const int64_t A = s.cfg.train.grad_accum, B = s.cfg.train.batch_size;
  auto loss_sum = torch::zeros({}, torch::dtype(at::kFloat).device(s.device));  // []
  const std::string fault = nonfinite_fault(s.step + 1);  // test hook (failure.h)
  for (int64_t a = 0; a < A; ++a) {
    if (s.averager && a == A - 1) s.averager->arm();  // the last backward all-reduces
    auto loss = batch_loss(s, s.train_loader->next_batch(B, s.dp_rank(), s.dp));  // []
    if (fault == "loss") loss = loss * std::numeric_limits<float>::quiet_NaN();
    (loss / static_cast<double>(A)).backward();
    loss_sum += loss.detach();
  }
  if (s.group) {  // gradients and loss averaged over the data-parallel ranks
    s.averager->finish();
    std::vector<at::Tensor> l = {loss_sum};
    s.group->all_reduce_sum(l, "loss all-reduce");
    loss_sum.div_(static_cast<double>(s.group->size()));  // dp x cp partial means
  }
  if (fault == "grad") {
    torch::NoGradGuard no_grad;
    s.params.front().grad().view({-1})[0].fill_(std::numeric_limits<float>::infinity());
  }
  st.grad_norm = clip_grad_norm(s.params, s.cfg.optim.clip);
  st.loss = loss_sum.item<double>() / static_cast<double>(A);
  st.skipped = !std::isfinite(st.loss) ? "loss" : !std::isfinite(st.grad_norm) ? "grad norm" : "";
  if (st.skipped.empty()) {
    adamw_step(*s.opt, s.cfg.optim.fused && s.device.is_cuda());
    if (s.group) dist::broadcast_from_owners(*s.group, s.params, s.owners);
    s.consecutive_skips = 0;
  } else {  // weights and AdamW state untouched; the gradients are dropped
    drop_gradients(s.params);
    ++s.skipped_steps;
    ++s.consecutive_skips;
  }
  synchronize(s.device);
  st.step_time_s = seconds_since(t0);
  st.peak_memory_bytes = peak_memory_bytes(s.device);
  st.memory_bytes = current_memory_bytes(s.device);
  const int64_t tokens = s.dp * A * B * s.cfg.train.context;
  st.tokens_per_s = static_cast<double>(tokens) / st.step_time_s;
  s.train_time_s += st.step_time_s;
  s.tokens += tokens;
  st.step = ++s.step;
  return st;
}

double validation_loss(Session& s) {
  TORCH_CHECK(s.val_loader, "validation needs data.val_fraction > 0");
  torch::NoGradGuard no_grad;
  const int64_t B = s.cfg.train.batch_size;
  auto sum = torch::zeros({1}, torch::kDouble);  // [1]; with ranks, each sums its batches
  for (int64_t b = s.dp_rank(); b < s.cfg.val.batches; b += s.dp)
    sum += batch_loss(s, s.val_loader->batch_at(b * B, B)).item<double>();
  if (s.group) {
    if (s.device.is_cuda()) sum = sum.to(s.device);
    std::vector<at::Tensor> v = {sum};
    s.group->all_reduce_sum(v, "validation loss all-reduce");
  }
  return sum.item<double>() / static_cast<double>(s.cfg.val.batches * s.cp);
}

double validation_loss(Session& s, model::AttentionMode mode) {
  const auto saved = s.model->attention_mode();
  s.model->set_attention_mode(mode);
  const double loss = validation_loss(s);
  s.model->set_attention_mode(saved);
  return loss;
}

int64_t validation_tokens(const RunConfig& cfg) {
  return cfg.val.batches * cfg.train.batch_size * cfg.train.context;
}

std::vector<model::AttentionMode> validation_modes(const RunConfig& cfg,
                                                   model::AttentionMode step_mode) {
  if (step_mode == model::AttentionMode::Dense) return {model::AttentionMode::Dense};
  std::vector<model::AttentionMode> out;
  for (const auto mode : {model::AttentionMode::Dense, model::AttentionMode::Lighthouse})
    for (const auto m : cfg.val.modes)
      if (m == mode) out.push_back(m);
  return out;
}

void save_checkpoint(Session& s) {
  const nlohmann::json meta = {{"format", 1},
                               {"step", s.step},
                               {"world_size", s.group ? s.group->size() : 1},
                               {"tokens", s.tokens},
                               {"data_cursor", s.train_loader->cursor()},
                               {"data_vocab_size", s.data.vocab_size},
                               {"vocabulary", s.vocab.to_json()},
                               {"attention", mode_name(s.model->attention_mode())},
                               {"skipped_steps", s.skipped_steps},
                               {"consecutive_skips", s.consecutive_skips},
                               {"train_time_s", s.train_time_s},
                               {"config", to_json(s.cfg)}};
  TensorMap tensors;
  add_model(tensors, *s.model);
  if (s.group)
    add_sharded_optimizer(tensors, *s.group, *s.model, *s.opt, s.owners);
  else
    add_optimizer(tensors, *s.model, *s.opt);
  add_rng(tensors);
  if (s.rank() == 0) {
    write_checkpoint(checkpoint_path(s.run_dir, s.step), meta, tensors);
    prune_checkpoints(s.run_dir, s.cfg.checkpoint.keep);
  }
  if (s.group) s.group->barrier("checkpoint barrier");
}

// A shard changed or bad mid-run (ShardReadError): one process checkpoints its last whole step
// (`cursor` rewinds the data order of a step that did not finish) and stops naming the shard;
// ranks of a group stop without one (a checkpoint is a collective the other ranks may not
// reach), and the run resumes from its previous checkpoint.
[[noreturn]] void stop_on_shard_error(Session& s, const ShardReadError& e,
                                      std::optional<uint64_t> cursor) {
  if (s.group) throw ConfigError(std::string(e.what()) + " (rank " + std::to_string(s.rank()) + ")");
  if (cursor) {
    s.train_loader->seek(*cursor);
    drop_gradients(s.params);
  }
  save_checkpoint(s);
  throw ConfigError(std::string(e.what()) + "; stopped after step " + std::to_string(s.step) +
                    " with checkpoint " + checkpoint_path(s.run_dir, s.step) +
                    "; repair the data, then continue with --set run.resume=" + s.run_dir);
}

TrainedModel load_trained_model(const std::string& target) {
  auto [path, ck] = read_newest_checkpoint(target);
  TrainedModel out;
  apply_json(out.cfg, ck.meta.at("config"), path);
  out.model = model::Llama(to_model_config(out.cfg));
  restore_model(ck, *out.model, path);
  out.model->set_attention_mode(model::AttentionMode::Dense);
  out.path = path;
  out.step = ck.meta.at("step").get<int64_t>();
  out.vocab = saved_vocabulary(ck.meta, out.cfg, path);
  return out;
}

TrainResult train(Session& s, const ConsoleHooks& console) {
  const auto t_start = Clock::now();
  const RunConfig& c = s.cfg;
  const bool lead = s.rank() == 0;  // rank 0 alone prints and writes files
  const auto say = [&](const std::string& text) {
    if (!lead) return;
    if (console.line)
      console.line(text);
    else
      std::cout << text << std::endl;
  };
  TrainResult result;
  const int64_t end = c.train.stop_at > 0 ? c.train.stop_at : c.train.steps;
  if (s.step >= end) {  // resumed at train.steps (open_session refuses an earlier stop_at)
    say("run complete: " + s.resumed_from + " is step " + std::to_string(s.step) + " of " +
        std::to_string(c.train.steps) + "; nothing to train (raise train.steps to continue)");
    return result;
  }
  std::optional<RunLock> lock;  // one trainer per run folder, until this function returns
  if (lead) {
    std::error_code ec;
    fs::create_directories(s.run_dir, ec);
    if (ec) throw ConfigError("run.dir: cannot create " + s.run_dir + ": " + ec.message());
    std::string note;
    lock.emplace(s.run_dir, &note);
    if (!note.empty()) std::cerr << "lighthouse: " << note << std::endl;
  }
  if (s.resumed_from.empty() && !list_checkpoints(s.run_dir).empty())
    throw ConfigError("run.dir: " + s.run_dir +
                      " already holds checkpoints; resume it with --set "
                      "run.resume=" +
                      s.run_dir + " or choose another run.dir");
  if (lead) {
    write_text(s.run_dir + "/config.toml", to_toml(c));
    write_text(s.run_dir + "/config.json", to_json(c).dump(2) + "\n");
  }
  MetricsLog metrics(lead ? s.run_dir + "/metrics.jsonl" : "", s.step);

  const int64_t tokens_per_step =
      s.dp * c.train.grad_accum * c.train.batch_size * c.train.context;
  const auto mcfg = to_model_config(c);
  const auto dense = model::resolved_dense_layers(mcfg);
  const Config& lh = mcfg.lighthouse;
  int64_t n_params = 0;
  for (const auto& p : s.params) n_params += p.numel();
  std::ostringstream head;
  head << "run " << s.run_dir
       << (s.resumed_from.empty() ? "" : " (resumed from " + s.resumed_from + ")")
       << "\n  model: " << format_count(double(n_params)) << " parameters, " << c.model.n_layers
       << " layers (always dense: " << join(dense) << "), d_model " << c.model.d_model << ", "
       << c.model.n_heads << " heads x " << c.model.head_dim << "\n  data: " << s.data.description
       << "\n  device: " << s.device.str()
       << (s.group ? " x " + std::to_string(s.group->size()) + " ranks (" +
                         s.group->backend_name() + ", data parallel " + std::to_string(s.dp) +
                         (s.cp > 1 ? ", context parallel " + std::to_string(s.cp) : "") +
                         ", AdamW state sharded)"
                   : "")
       << (s.bf16 ? " (bf16 autocast, fp32 master weights)" : " (fp32)") << ", "
       << at::get_num_threads() << " CPU threads\n  recipe: " << c.train.steps << " steps";
  if (c.train.attention == model::AttentionMode::Lighthouse)
    head << ", Lighthouse (L=" << lh.levels << " p=" << lh.pool << " k=" << lh.topk
         << " m=" << lh.tile_topk << " " << scorer_name(lh.scorer)
         << (lh.scorer == Scorer::Dilated ? " delta=" + std::to_string(lh.dilation) : "")
         << (lh.selection == Selection::Causal ? " causal" : "") << ") until step "
         << c.train.stage1_steps << ", then dense";
  else
    head << ", dense attention";
  head << "; " << (s.dp > 1 ? std::to_string(s.dp) + " ranks x " : "") << c.train.batch_size
       << " x " << c.train.context << " tokens x "
       << c.train.grad_accum << " accumulation = " << format_count(double(tokens_per_step))
       << " tokens/step; this run: steps " << s.step + 1 << ".." << end;
  say(head.str());

  std::optional<model::AttentionMode> prev;
  if (!s.saved_mode.empty())
    prev = s.saved_mode == "lighthouse" ? model::AttentionMode::Lighthouse
                                        : model::AttentionMode::Dense;
  const int64_t first = s.step;
  const char* kill_env = std::getenv("LIGHTHOUSE_FAULT_KILL_AFTER_STEP");
  const int64_t kill_after = kill_env && *kill_env ? std::atoll(kill_env) : -1;
  if (const char* stall = std::getenv("LIGHTHOUSE_FAULT_STALL_RANK"); stall && *stall) {
    const std::string v = stall;  // "R:SECONDS" (test hook, trainer.h)
    if (std::atoi(v.c_str()) == s.rank() && v.find(':') != std::string::npos)
      ::sleep(static_cast<unsigned>(std::atoi(v.c_str() + v.find(':') + 1)));
  }
  if (console.progress && lead && s.step < end)
    console.progress(0, (end - first) * tokens_per_step, "starting");
  StopSignals stop;  // SIGINT / SIGTERM: finish the step, checkpoint, return
  bool stopping = false;
  while (s.step < end && !stopping) {
    const auto mode = mode_at(c, s.step);
    if (prev && *prev != mode) {
      say("== step " + std::to_string(s.step) + ": switching to " + mode_name(mode) +
          " attention in the non-dense layers (" +
          (mode == model::AttentionMode::Dense ? "stage 2" : "stage 1") +
          "; weights and optimizer state unchanged) ==");
      metrics.write({{"type", "event"},
                     {"step", s.step},
                     {"event", "attention_switch"},
                     {"attention", mode_name(mode)}});
    }
    prev = mode;
    StepStats st;
    const uint64_t cursor = s.train_loader->cursor();
    try {
      st = train_step(s);
    } catch (const c10::Error& e) {  // the CUDA or the CPU allocator
      if (is_out_of_memory(e)) throw_step_oom(c, s.step + 1, e);
      throw;
    } catch (const std::bad_alloc& e) {
      throw_step_oom(c, s.step + 1, e);
    } catch (const ShardReadError& e) {
      stop_on_shard_error(s, e, cursor);
    }
    char line[200];
    if (!st.skipped.empty()) {
      report_skip(s, st, metrics, say);
    } else {
      result.losses.push_back(st.loss);
      metrics.write({{"type", "step"},
                     {"step", st.step},
                     {"loss", st.loss},
                     {"lr", st.lr},
                     {"grad_norm", st.grad_norm},
                     {"tokens_per_s", st.tokens_per_s},
                     {"step_time_s", st.step_time_s},
                     {"attention", mode_name(st.mode)},
                     {"peak_memory_bytes", st.peak_memory_bytes},
                     {"memory_bytes", st.memory_bytes},
                     {"tokens", s.tokens}});
      if (st.step % c.log.every == 0 || st.step == end || st.step == first + 1) {
        std::snprintf(
            line, sizeof(line), "step %6lld/%lld  loss %.4f  lr %.2e  grad %.3f  %s tok/s  %s",
            static_cast<long long>(st.step), static_cast<long long>(c.train.steps), st.loss, st.lr,
            st.grad_norm, format_count(st.tokens_per_s).c_str(), mode_name(st.mode).c_str());
        say(line);
      }
    }
    // train.time_limit_s: this step is the last when the run's step time reached the limit
    // (on any rank: every rank stops after the same step).
    bool time_up = c.train.time_limit_s > 0 && s.train_time_s >= c.train.time_limit_s &&
                   st.step < end;
    if (s.group && c.train.time_limit_s > 0) {
      auto flag = torch::full({1}, time_up ? 1.0f : 0.0f,
                              torch::TensorOptions().device(s.device));  // [1]
      s.group->all_reduce_max(flag, "time-limit all-reduce");
      time_up = flag.item<float>() > 0;
    }
    if (s.val_loader && c.val.every > 0 &&
        (st.step % c.val.every == 0 || st.step == end || time_up)) {
      // One record per mode, dense first; the console line leads with the dense value.
      std::string text = "step " + std::to_string(st.step) + "  validation loss";
      result.final_val_loss = -1;
      for (const auto mode : validation_modes(c, st.mode)) {
        double loss = 0;
        try {
          loss = validation_loss(s, mode);
        } catch (const ShardReadError& e) {
          s.model->set_attention_mode(st.mode);
          stop_on_shard_error(s, e, std::nullopt);
        }
        if (mode == model::AttentionMode::Dense) result.final_val_loss = loss;
        metrics.write({{"type", "val"},
                       {"step", st.step},
                       {"mode", mode_name(mode)},
                       {"loss", loss},
                       {"tokens", validation_tokens(c)}});
        std::snprintf(line, sizeof(line), "  %s %.4f",
                      mode == model::AttentionMode::Dense ? "dense" : "| lighthouse-mode", loss);
        text += line;
      }
      say(text);
    }
    if (console.progress && lead) {
      std::snprintf(line, sizeof(line), "step %lld/%lld loss %.3f", static_cast<long long>(st.step),
                    static_cast<long long>(end), st.loss);
      console.progress((st.step - first) * tokens_per_step, (end - first) * tokens_per_step, line);
    }
    if (st.step == kill_after) std::raise(SIGKILL);  // test hook (trainer.h)
    stopping = stop.pending() != 0;

    if ((c.checkpoint.every > 0 && st.step % c.checkpoint.every == 0) || st.step == end ||
        stopping || time_up)
      save_checkpoint(s);
    if (time_up && !stopping) {
      std::snprintf(line, sizeof(line),
                    "train.time_limit_s: %.1f s of optimizer steps reached at step %lld of %lld; "
                    "stopped there",
                    s.train_time_s, static_cast<long long>(s.step),
                    static_cast<long long>(c.train.steps));
      say(line);
      metrics.write({{"type", "event"},
                     {"step", s.step},
                     {"event", "time_limit"},
                     {"train_time_s", s.train_time_s}});
      result.time_limited = true;
      break;
    }
  }
  result.wall_s = seconds_since(t_start);
  if (s.step < end && !result.time_limited) {  // stopped by a signal, after the checkpoint of the step it came in
    result.signal = stop.pending() ? stop.pending() : SIGTERM;  // a peer rank's signal
    say(std::string("stopped by ") + signal_name(result.signal) + " after step " +
        std::to_string(s.step) + ": checkpoint " + checkpoint_path(s.run_dir, s.step) +
        "; continue with --set run.resume=" + s.run_dir);
    return result;
  }
  std::ostringstream done;
  done << "done: step " << s.step << "/" << c.train.steps << " in " << std::fixed;
  done.precision(1);
  done << result.wall_s << " s";
  if (!result.losses.empty()) {
    done.precision(4);
    if (result.final_val_loss >= 0)
      done << "; dense-mode validation loss " << result.final_val_loss;
    done << "; last training loss " << result.losses.back();
  }
  if (s.skipped_steps > 0) done << "; " << s.skipped_steps << " step(s) skipped (non-finite)";
  done << "; checkpoint " << checkpoint_path(s.run_dir, s.step);
  say(done.str());
  return result;
}

}  // namespace lighthouse::train
