// Reading and scoring a NIAH prompt file (niah_prompts.h).
#include "eval/niah_prompts.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace lighthouse::eval {

NiahPromptReader::NiahPromptReader(const std::string& path) : path_(path), in_(path) {
  if (!in_) throw std::invalid_argument("--niah-prompts: cannot open " + path);
  std::string text;
  if (!std::getline(in_, text)) fail("empty file, expected a header line");
  line_ = 1;
  const auto h = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!h.is_object() || h.value("format", "") != kNiahPromptFormat)
    fail(std::string("the header must be a JSON object with \"format\": \"") + kNiahPromptFormat +
         "\" (write the file with python -m lighthouse.eval.niah_prompts)");
  try {
    if (h.at("version").get<int64_t>() != 1)
      fail("version " + h.at("version").dump() + ", this build reads version 1");
    header_.vocab_size = h.at("vocab_size").get<int64_t>();
    header_.prompts = h.at("prompts").get<int64_t>();
    const auto id = [&](const char* k) {
      return h.contains(k) && !h.at(k).is_null() ? h.at(k).get<int64_t>() : int64_t{-1};
    };
    header_.eos_id = id("eos_id");
    header_.bos_id = id("bos_id");
    header_.tokenizer = h.value("tokenizer", "");
    header_.template_text = h.value("template", "");
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("header: a field is missing or has the wrong type (") + e.what() + ")");
  }
  if (header_.vocab_size < 1) fail("header: vocab_size must be positive");
  if (header_.prompts < 1) fail("header: prompts must be positive (the file holds none)");
}

void NiahPromptReader::fail(const std::string& msg) const {
  throw std::invalid_argument("--niah-prompts: " + path_ + ":" + std::to_string(line_) + ": " +
                              msg);
}

bool NiahPromptReader::next(NiahPrompt& p) {
  std::string text;
  while (std::getline(in_, text)) {
    ++line_;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) fail("not a JSON object");
    try {
      p.context = j.at("context").get<int64_t>();
      p.depth = j.at("depth").get<int64_t>();
      p.trial = j.value("trial", int64_t{0});
      p.answer_start = j.at("answer_start").get<int64_t>();
      p.tokens = j.at("tokens").get<std::vector<int64_t>>();
    } catch (const nlohmann::json::exception& e) {
      fail(std::string("a field is missing or has the wrong type (") + e.what() + ")");
    }
    if (static_cast<int64_t>(p.tokens.size()) != p.context)
      fail("tokens holds " + std::to_string(p.tokens.size()) + " ids, context says " +
           std::to_string(p.context));
    if (p.answer_start < 1 || p.answer_start >= p.context)
      fail("answer_start must be in [1, context = " + std::to_string(p.context) + "), got " +
           std::to_string(p.answer_start));
    for (const int64_t t : p.tokens)
      if (t < 0 || t >= header_.vocab_size)
        fail("token id " + std::to_string(t) + " is outside the header's vocab_size " +
             std::to_string(header_.vocab_size));
    ++read_;
    return true;
  }
  if (in_.bad()) fail("read error");
  if (read_ != header_.prompts)
    fail("the header announces " + std::to_string(header_.prompts) + " prompts, the file holds " +
         std::to_string(read_) + " (truncated?)");
  return false;
}

bool niah_span_correct(const NiahPrompt& p, const int64_t* greedy) {
  for (int64_t i = p.answer_start; i < p.context; ++i)
    if (greedy[i - 1] != p.tokens[i]) return false;
  return true;
}

NiahResult run_niah_prompts(const std::string& path, int64_t model_vocab,
                            const NiahGreedyPredictor& predict, int64_t batch_tokens,
                            const std::function<void(int64_t, int64_t)>& progress) {
  NiahPromptReader reader(path);
  const NiahPromptHeader& h = reader.header();
  if (h.vocab_size > model_vocab)
    throw std::invalid_argument("--niah-prompts: " + path + " was tokenized with vocab_size " +
                                std::to_string(h.vocab_size) + ", above the model's " +
                                std::to_string(model_vocab));
  std::vector<std::pair<int64_t, int64_t>> order;  // cells in first-appearance order
  std::map<std::pair<int64_t, int64_t>, NiahCell> cells;
  std::vector<NiahPrompt> batch;
  int64_t done = 0;
  const auto flush = [&] {
    if (batch.empty()) return;
    const int64_t B = static_cast<int64_t>(batch.size()), N = batch[0].context;
    auto tokens = torch::empty({B, N}, torch::kLong);  // [B, N]
    for (int64_t b = 0; b < B; ++b)
      std::copy(batch[b].tokens.begin(), batch[b].tokens.end(),
                tokens.data_ptr<int64_t>() + b * N);
    const auto greedy = predict(tokens).to(at::kCPU, at::kLong).contiguous();  // [B, N]
    TORCH_INTERNAL_ASSERT(greedy.size(0) == B && greedy.size(1) == N);
    for (int64_t b = 0; b < B; ++b) {
      NiahCell& c = cells[{batch[b].context, batch[b].depth}];
      c.correct += niah_span_correct(batch[b], greedy.data_ptr<int64_t>() + b * N);
    }
    done += B;
    batch.clear();
    if (progress) progress(done, h.prompts);
  };
  NiahPrompt p;
  while (reader.next(p)) {
    const std::pair<int64_t, int64_t> key{p.context, p.depth};
    auto [it, fresh] = cells.try_emplace(key, NiahCell{p.context, p.depth, 0, 0, 0});
    if (fresh) order.push_back(key);
    ++it->second.trials;
    const int64_t per_batch = std::max<int64_t>(1, batch_tokens / p.context);
    if (!batch.empty() && batch[0].context != p.context) flush();
    batch.push_back(std::move(p));
    if (static_cast<int64_t>(batch.size()) >= per_batch) flush();
  }
  flush();
  NiahResult res;
  for (const auto& key : order) {
    NiahCell c = cells.at(key);
    c.accuracy = static_cast<double>(c.correct) / static_cast<double>(c.trials);
    res.mean += c.accuracy;
    res.cells.push_back(c);
  }
  res.mean /= static_cast<double>(res.cells.size());
  return res;
}

}  // namespace lighthouse::eval
