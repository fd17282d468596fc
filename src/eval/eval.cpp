// Perplexity and NIAH over one model, reported as JSON and console lines (eval.h).
#include "eval/eval.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "eval/niah_prompts.h"
#include "eval/perplexity.h"
#include "train/data.h"
#include "train/device.h"

namespace lighthouse::eval {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(trim(item));
  return out;
}

// Throws std::invalid_argument naming `flag` when the ids of `stream` are not in the model's
// vocabulary (bytes vs another tokenizer, another vocab_size or EOS id).
void check_stream_vocabulary(const EvalModel& m, const train::TokenStream& stream,
                             const std::string& flag, const std::string& what) {
  const train::Vocabulary d = train::stream_vocabulary(stream);
  const train::Vocabulary& v = m.vocab;
  const bool ok = d.bytes == v.bytes &&
                  (d.bytes || (d.vocab_size <= m.cfg.model.vocab &&
                               (!m.has_run_config || d.vocab_size == v.vocab_size) &&
                               (v.eos_id < 0 || d.eos_id == v.eos_id)));
  if (ok) return;
  std::string msg = flag + ": the ids of " + what + " are " + d.describe() +
                    ", the model's vocabulary is " + v.describe();
  if (d.bytes && !v.bytes && !stream.shards)
    msg += " (text is tokenized as bytes; write token shards with the model's tokenizer: "
           "python -m lighthouse.data.tokenize --tokenizer DIR --input SOURCE --out SHARDS)";
  throw std::invalid_argument(msg);
}

std::string size_label(int64_t n) {
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n / 1024) + "K";
  return std::to_string(n);
}

// The retrieval test (retrieval.h) on the run's validation text with its data.needles, in
// dense mode, then under the sliding-window control.
nlohmann::json run_retrieval(EvalModel& m, const RetrievalOptions& ro, const EvalHooks& hooks) {
  const train::NeedleConfig& nc = m.cfg.data.needles;
  if (!m.has_run_config || nc.records == 0)
    throw std::invalid_argument(
        "--retrieval: " + m.source +
        " was not trained with data.needles (records = 0), so its vocabulary has no needle "
        "ids; train with data.needles.records > 0");
  if (m.cfg.data.val_fraction <= 0)
    throw std::invalid_argument("--retrieval: the run has data.val_fraction = 0, no held-out text");
  if (ro.window < 0)
    throw std::invalid_argument("--retrieval-window: must be >= 0 (0 = no control), got " +
                                std::to_string(ro.window));
  const int64_t context = m.cfg.train.context;
  const train::TokenStream text = train::load_dataset(m.cfg).val;
  const train::NeedleIds ids{m.vocab.bytes ? model::kVocab : m.vocab.vocab_size, nc.symbols};
  if (ids.end() > m.cfg.model.vocab)
    throw std::invalid_argument("--retrieval: the needle ids [" + std::to_string(ids.base) + ", " +
                                std::to_string(ids.end()) + ") exceed the model's vocab_size " +
                                std::to_string(m.cfg.model.vocab));
  const auto saved = m.model->attention_mode();
  m.model->set_attention_mode(model::AttentionMode::Dense);
  torch::NoGradGuard no_grad;
  const auto logits = [&](const at::Tensor& tokens) {
    train::AutocastScope autocast(m.bf16);
    return m.model->forward(tokens.to(m.device));  // [B, N, vocab]
  };
  const auto score = [&](const std::string& label) {
    return retrieval_json(score_retrieval(text, nc, ids, context, ro, logits,
                                          [&](int64_t done, int64_t total) {
                                            if (hooks.progress)
                                              hooks.progress(label, done, total, "seq");
                                          }));
  };
  nlohmann::json r = {
      {"mode", "dense"},
      {"scoring", "teacher forcing: greedy (argmax over the vocabulary) value tokens given the "
                  "true prefix; exact match = every value token right"},
      {"sequences", ro.sequences},
      {"seed", ro.seed},
      {"context", context},
      {"needles", {{"records", nc.records},
                   {"queries", nc.queries},
                   {"key_length", nc.key_length},
                   {"value_length", nc.value_length},
                   {"symbols", nc.symbols},
                   {"min_distance", nc.min_distance},
                   {"distractors", nc.distractors}}},
      {"chance", retrieval_chance(nc)},
      {"window", nullptr}};
  r["full"] = score("retrieval");
  if (ro.window > 0) {
    const int64_t layers = m.cfg.model.n_layers;
    m.model->set_dense_window(ro.window);
    try {
      r["window"] = {{"size", ro.window},
                     {"layers", layers},
                     {"receptive_field", layers * (ro.window - 1) + 1},
                     {"score", score("retrieval window")}};
    } catch (...) {
      m.model->set_dense_window(0);
      throw;
    }
    m.model->set_dense_window(0);
  }
  m.model->set_attention_mode(saved);
  return r;
}

}  // namespace

std::vector<model::AttentionMode> parse_modes(const std::string& text) {
  std::vector<model::AttentionMode> out;
  for (const auto& name : split(text)) {
    std::string err;
    const model::AttentionMode m = model::parse_mode(name, &err);
    if (!err.empty())
      throw std::invalid_argument("--modes: each mode must be dense or lighthouse, got \"" +
                                  name + "\"");
    if (std::find(out.begin(), out.end(), m) != out.end())
      throw std::invalid_argument("--modes: \"" + name + "\" is listed twice");
    out.push_back(m);
  }
  if (out.empty()) throw std::invalid_argument("--modes: expected dense, lighthouse or both");
  std::stable_partition(out.begin(), out.end(),
                        [](model::AttentionMode m) { return m == model::AttentionMode::Dense; });
  return out;
}

std::vector<int64_t> parse_sizes(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  for (std::string item : split(text)) {
    int64_t mult = 1;
    if (!item.empty() && (item.back() == 'K' || item.back() == 'k')) mult = 1024;
    if (!item.empty() && (item.back() == 'M' || item.back() == 'm')) mult = 1 << 20;
    if (mult > 1) item.pop_back();
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0)
      throw std::invalid_argument(flag + ": expected non-negative integers separated by commas " +
                                  "(K/M suffixes allowed), got \"" + text + "\"");
    out.push_back(v * mult);
  }
  if (out.empty()) throw std::invalid_argument(flag + ": expected at least one value");
  return out;
}

std::vector<int64_t> niah_contexts(const EvalOptions& o, int64_t trained_context,
                                   std::vector<int64_t>* skipped) {
  if (o.contexts_explicit) return o.niah_opts.contexts;
  std::vector<int64_t> out;
  for (const int64_t c : o.niah_opts.contexts) {
    if (c <= trained_context)
      out.push_back(c);
    else if (skipped)
      skipped->push_back(c);
  }
  if (out.empty())
    for (const int64_t c : {trained_context / 4, trained_context / 2, trained_context})
      if (c >= niah_min_context()) out.push_back(c);
  return out;
}

nlohmann::json eval_key(const EvalOptions& o) {
  std::vector<std::string> modes;
  for (const auto m : o.modes) modes.push_back(model::mode_name(m));
  nlohmann::json k = {{"ppl", o.ppl}, {"niah", o.niah}, {"modes", modes}, {"data", o.data},
                      {"max_tokens", o.max_tokens}};
  if (o.niah)
    k["niah_options"] = {{"contexts", o.niah_opts.contexts}, {"depths", o.niah_opts.depths},
                         {"trials", o.niah_opts.trials},     {"seed", o.niah_opts.seed},
                         {"contexts_explicit", o.contexts_explicit},
                         {"depths_explicit", o.depths_explicit}, {"prompts", o.niah_prompts}};
  if (o.retrieval)
    k["retrieval_options"] = {{"sequences", o.retrieval_opts.sequences},
                              {"seed", o.retrieval_opts.seed},
                              {"edges", o.retrieval_opts.edges},
                              {"window", o.retrieval_opts.window}};
  return k;
}

nlohmann::json run_eval(EvalModel& m, const EvalOptions& o, const EvalHooks& hooks) {
  const auto say = [&](const std::string& s) {
    if (hooks.line)
      hooks.line(s);
    else
      std::cout << s << std::endl;
  };
  if (!o.ppl && !o.niah && !o.retrieval)
    throw std::invalid_argument("eval: give --ppl, --retrieval or --niah");
  if (!o.niah && !o.niah_prompts.empty())
    throw std::invalid_argument("--niah-prompts: needs --niah");
  nlohmann::json out;
  out["model"] = {{"source", m.source},
                  {"step", m.step},
                  {"trained_context", m.has_run_config ? m.cfg.train.context : 0},
                  {"run_config", m.has_run_config}};
  out["device"] = m.device.str();
  out["precision"] = m.bf16 ? "bf16" : "fp32";
  char buf[256];

  if (o.ppl) {
    for (const auto mode : o.modes)
      if (mode == model::AttentionMode::Lighthouse && !m.has_run_config)
        throw std::invalid_argument(
            "--modes: lighthouse needs the run's Lighthouse config, which " + m.source +
            " lacks (export it with this lighthouse)");
    train::RunConfig dcfg = m.cfg;
    train::TokenStream stream;
    std::string what;
    if (o.data.empty()) {
      if (!m.has_run_config)
        throw std::invalid_argument("--data: " + m.source +
                                    " carries no run config, so there is no validation split; "
                                    "name a source with --data");
      if (m.cfg.data.val_fraction <= 0)
        throw std::invalid_argument(
            "--data: the run has data.val_fraction = 0 (no validation "
            "split); name a source with --data");
      // The run's own data: its shards or text, its data.cache only read (trust.md)
      stream = train::load_dataset(m.cfg, {}, train::CacheUse::ReadOnly).val;
      what =
          "validation split of " +
          (m.cfg.data.source == "builtin" ? std::string("the built-in corpus") : m.cfg.data.source);
      check_stream_vocabulary(m, stream, "data.source", what);
    } else {
      dcfg.data.source = o.data;
      try {
        stream = train::load_stream(dcfg, nullptr, &what, nullptr, {}, train::CacheUse::ReadOnly);
      } catch (const train::ConfigError& e) {
        std::string msg = e.what();
        if (msg.rfind("data.source", 0) == 0) msg = "--data" + msg.substr(11);
        throw std::invalid_argument(msg);
      }
      check_stream_vocabulary(m, stream, "--data", what);
    }
    const int64_t context = m.has_run_config ? m.cfg.train.context : 2048;
    const int64_t batch = m.has_run_config ? m.cfg.train.batch_size : 1;
    out["ppl_data"] = {{"source", what}, {"context", context}};
    for (const auto mode : o.modes) {
      const std::string name = model::mode_name(mode);
      const PplResult r = perplexity(m, stream, context, batch, mode, o.max_tokens,
                                     [&](int64_t done, int64_t total) {
                                       if (hooks.progress)
                                         hooks.progress("ppl " + name, done, total, "seq");
                                     });
      out["ppl"][name] = {{"loss", r.loss}, {"ppl", r.ppl}, {"tokens", r.tokens}};
      std::snprintf(
          buf, sizeof buf,
          "ppl %-10s loss %.4f  ppl %.3f  over %lld tokens (%lld of %lld sequences of %lld, %s)%s",
          (name + ":").c_str(), r.loss, r.ppl, static_cast<long long>(r.tokens),
          static_cast<long long>(r.sequences), static_cast<long long>(r.available),
          static_cast<long long>(context), what.c_str(),
          mode == model::AttentionMode::Dense ? ""
                                              : "  [reads future tokens: not a quality measure]");
      say(buf);
    }
  }

  if (o.retrieval) {
    out["retrieval"] = run_retrieval(m, o.retrieval_opts, hooks);
    say(retrieval_table(out["retrieval"]));
  }

  if (o.niah) {
    if (o.niah_prompts.empty() && !m.vocab.bytes)
      throw std::invalid_argument(
          "--niah-prompts: the model's vocabulary is " + m.vocab.describe() +
          ", not bytes, and the built-in NIAH prompts are byte tokens; write prompts with the "
          "run's tokenizer (python -m lighthouse.eval.niah_prompts --tokenizer DIR --out FILE) "
          "and pass --niah-prompts FILE");
    const auto saved = m.model->attention_mode();
    m.model->set_attention_mode(model::AttentionMode::Dense);
    torch::NoGradGuard no_grad;
    const auto logits_of = [&](const at::Tensor& tokens) {
      const auto on = tokens.to(m.device);  // [B, N]
      train::AutocastScope autocast(m.bf16);
      return m.model->forward(on);  // [B, N, vocab]
    };
    const auto report = [&](int64_t done, int64_t total) {
      if (hooks.progress) hooks.progress("niah", done, total, "prompts");
    };
    NiahResult r;
    nlohmann::json meta;
    if (!o.niah_prompts.empty()) {
      if (o.contexts_explicit || o.depths_explicit)
        throw std::invalid_argument(std::string(o.contexts_explicit ? "--niah-contexts"
                                                                    : "--niah-depths") +
                                    ": the prompt file given with --niah-prompts fixes the grid");
      const NiahPromptHeader h = NiahPromptReader(o.niah_prompts).header();
      const train::Vocabulary& v = m.vocab;
      if (h.vocab_size != (v.bytes ? model::kVocab : v.vocab_size) ||
          (v.eos_id >= 0 && h.eos_id >= 0 && h.eos_id != v.eos_id))
        throw std::invalid_argument(
            "--niah-prompts: " + o.niah_prompts + " was tokenized with vocab_size " +
            std::to_string(h.vocab_size) + ", eos_id " + std::to_string(h.eos_id) + " (" +
            h.tokenizer + "), the model's vocabulary is " + v.describe());
      r = run_niah_prompts(
          o.niah_prompts, m.cfg.model.vocab,
          [&](const at::Tensor& tokens) { return logits_of(tokens).argmax(-1); },
          o.niah_opts.batch_tokens, report);
      meta = {{"prompts", o.niah_prompts},
              {"tokenizer", h.tokenizer},
              {"template", h.template_text},
              {"chance", nullptr},
              {"scoring", "greedy exact match of the answer span"}};
    } else {
      NiahOptions no = o.niah_opts;
      std::vector<int64_t> skipped;
      if (!o.contexts_explicit && !m.has_run_config)
        throw std::invalid_argument("--niah-contexts: " + m.source +
                                    " carries no trained context; list the contexts to test");
      no.contexts = niah_contexts(o, m.cfg.train.context, &skipped);
      if (!skipped.empty()) {
        std::string s = "niah: skipping contexts beyond the trained context " +
                        std::to_string(m.cfg.train.context) + ":";
        for (const int64_t c : skipped) s += " " + size_label(c);
        say(s + " (list them with --niah-contexts to run them)");
      }
      r = run_niah(
          no,
          [&](const at::Tensor& tokens) {
            return logits_of(tokens).select(1, tokens.size(1) - 1).to(at::kFloat);  // [B, V]
          },
          report);
      meta = {{"trials", no.trials},
              {"seed", no.seed},
              {"skipped_contexts", skipped},
              {"template", "<filler>" + std::string(kNiahNeedle) + "<D>.\n<filler>" + kNiahQuery},
              {"chance", 0.1},
              {"scoring", "argmax over the digit tokens '0'..'9'"}};
    }
    m.model->set_attention_mode(saved);
    nlohmann::json cells = nlohmann::json::array();
    for (const auto& c : r.cells)
      cells.push_back({{"context", c.context},
                       {"depth", c.depth},
                       {"trials", c.trials},
                       {"accuracy", c.accuracy}});
    out["niah"] = {{"mean", r.mean}, {"mode", "dense"}, {"cells", cells}};
    out["niah"].update(meta);
    say(niah_table(out["niah"]));
  }
  return out;
}

std::string niah_table(const nlohmann::json& niah) {
  std::set<int64_t> depth_set, ctx_set;
  std::map<std::pair<int64_t, int64_t>, double> acc;
  for (const auto& c : niah.at("cells")) {
    const int64_t ctx = c.at("context").get<int64_t>(), d = c.at("depth").get<int64_t>();
    ctx_set.insert(ctx);
    depth_set.insert(d);
    acc[{ctx, d}] = c.at("accuracy").get<double>();
  }
  std::ostringstream os;
  char buf[64];
  const auto chance = niah.find("chance");
  if (chance != niah.end() && chance->is_number())
    std::snprintf(buf, sizeof buf, "chance %.2f", chance->get<double>());
  else
    std::snprintf(buf, sizeof buf, "greedy exact match of the answer");
  os << "niah (dense mode, accuracy; " << buf << ")\n  context \\ depth %";
  for (const int64_t d : depth_set) {
    std::snprintf(buf, sizeof buf, "%6lld", static_cast<long long>(d));
    os << buf;
  }
  for (const int64_t ctx : ctx_set) {
    std::snprintf(buf, sizeof buf, "\n  %17s", size_label(ctx).c_str());
    os << buf;
    for (const int64_t d : depth_set) {
      const auto it = acc.find({ctx, d});
      if (it == acc.end())
        std::snprintf(buf, sizeof buf, "%6s", "-");
      else
        std::snprintf(buf, sizeof buf, "%6.2f", it->second);
      os << buf;
    }
  }
  std::snprintf(buf, sizeof buf, "\n  mean %.3f", niah.at("mean").get<double>());
  os << buf;
  return os.str();
}

}  // namespace lighthouse::eval
