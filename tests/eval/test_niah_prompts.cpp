// NIAH over a prompt file (niah_prompts.h): greedy exact-match scoring of the answer span
// against a predictor that knows which prompts it answers, batching across context changes,
// bad files rejected naming --niah-prompts and the line, and a model whose vocabulary is not
// bytes refused the built-in byte prompts (naming --niah-prompts) or a mismatched file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "eval/eval.h"
#include "eval/niah_prompts.h"
#include "train/helpers.h"

namespace lighthouse::eval {
namespace {

// A scratch directory per test (train/helpers.h: no std::filesystem::remove_all, whose
// libtorch-exported symbols crash).
class NiahPrompts : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = train::testing::scratch_dir("prompts"); }
  std::string write(const std::string& name, const std::vector<nlohmann::json>& lines) {
    const std::string path = dir_ + "/" + name;
    std::ofstream out(path);
    for (const auto& l : lines) out << l.dump() << "\n";
    return path;
  }
  std::string dir_;
};

constexpr int64_t kV = 50;

nlohmann::json header(int64_t prompts, int64_t vocab = kV) {
  return {{"format", kNiahPromptFormat}, {"version", 1},  {"vocab_size", vocab},
          {"eos_id", 1},                 {"bos_id", 2},   {"tokenizer", "test"},
          {"template", "t"},             {"prompts", prompts}};
}

// A prompt of random ids whose last `span` ids are the answer.
nlohmann::json prompt(std::mt19937& rng, int64_t context, int64_t depth, int64_t trial,
                      int64_t span) {
  std::vector<int64_t> tokens(static_cast<size_t>(context));
  for (auto& t : tokens) t = static_cast<int64_t>(rng() % kV);
  return {{"context", context}, {"depth", depth},      {"trial", trial},
          {"answer", "x"},      {"needle_pos", 0},     {"answer_start", context - span},
          {"tokens", tokens}};
}

TEST_F(NiahPrompts, ScoresTheGreedyExactMatchOfTheAnswerSpanPerCell) {
  std::mt19937 rng(3);
  std::vector<nlohmann::json> lines;
  std::map<std::vector<int64_t>, bool> answers;  // prompt tokens -> whether to answer right
  std::map<std::pair<int64_t, int64_t>, std::pair<int, int>> want;  // cell -> (right, trials)
  // Two contexts interleaved with depths; spans of 1..3 tokens; 5 trials a cell.
  for (const int64_t context : {24, 40})
    for (const int64_t depth : {0, 50, 100})
      for (int64_t t = 0; t < 5; ++t) {
        auto p = prompt(rng, context, depth, t, 1 + (t + depth) % 3);
        const bool right = (t * 7 + depth + context) % 3 != 0;
        answers[p["tokens"].get<std::vector<int64_t>>()] = right;
        auto& w = want[{context, depth}];
        w.first += right;
        w.second += 1;
        lines.push_back(p);
      }
  lines.insert(lines.begin(), header(static_cast<int64_t>(lines.size())));
  const std::string path = write("p.jsonl", lines);

  int64_t calls = 0, last_done = 0;
  // Greedy predictions: the next token where the prompt is to be answered right, else off
  // by one at the span's last position (a near miss: the rest of the span is right).
  const NiahGreedyPredictor predict = [&](const at::Tensor& tokens) {
    ++calls;
    const int64_t B = tokens.size(0), N = tokens.size(1);
    auto out = torch::randint(0, kV, {B, N}, torch::kLong);  // [B, N]
    for (int64_t b = 0; b < B; ++b) {
      const int64_t* row = tokens.data_ptr<int64_t>() + b * N;
      const std::vector<int64_t> key(row, row + N);
      const bool right = answers.at(key);
      int64_t* o = out.data_ptr<int64_t>() + b * N;
      for (int64_t i = 0; i + 1 < N; ++i) o[i] = row[i + 1];
      if (!right) o[N - 2] = (row[N - 1] + 1) % kV;
    }
    return out;
  };
  const NiahResult r = run_niah_prompts(path, kV, predict, /*batch_tokens=*/100,
                                        [&](int64_t done, int64_t total) {
                                          EXPECT_GT(done, last_done);
                                          EXPECT_EQ(total, 30);
                                          last_done = done;
                                        });
  ASSERT_EQ(r.cells.size(), 6u);
  double mean = 0;
  for (const auto& c : r.cells) {
    const auto& w = want.at({c.context, c.depth});
    EXPECT_EQ(c.trials, w.second);
    EXPECT_EQ(c.correct, w.first) << c.context << " " << c.depth;
    EXPECT_DOUBLE_EQ(c.accuracy, static_cast<double>(w.first) / w.second);
    mean += c.accuracy / 6;
  }
  EXPECT_GT(mean, 0.3);
  EXPECT_LT(mean, 0.9);
  EXPECT_NEAR(r.mean, mean, 1e-12);
  EXPECT_EQ(r.cells[0].context, 24);  // cells in the file's order
  EXPECT_EQ(r.cells[3].context, 40);
  EXPECT_EQ(last_done, 30);
  // 100 tokens a batch: 4 prompts of 24, 2 of 40; the batch flushes at the context change.
  EXPECT_EQ(calls, (15 + 3) / 4 + (15 + 1) / 2);
}

TEST_F(NiahPrompts, BadFilesNameTheFlagTheFileAndTheLine) {
  std::mt19937 rng(5);
  const auto error_of = [&](const std::vector<nlohmann::json>& lines) {
    const std::string path = write("bad.jsonl", lines);
    try {
      run_niah_prompts(path, kV, [](const at::Tensor& t) { return t.clone(); }, 1000);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const auto good = prompt(rng, 20, 50, 0, 1);
  auto short_tokens = good;
  short_tokens["tokens"].erase(0);
  auto big_id = good;
  big_id["tokens"][3] = kV;
  auto bad_start = good;
  bad_start["answer_start"] = 20;
  nlohmann::json no_format = header(1);
  no_format.erase("format");
  struct Case {
    std::vector<nlohmann::json> lines;
    std::string line, says;
  };
  const std::vector<Case> cases = {
      {{no_format, good}, ":1:", "lighthouse-niah-prompts"},
      {{header(1), short_tokens}, ":2:", "tokens holds 19 ids, context says 20"},
      {{header(1), big_id}, ":2:", "token id 50 is outside the header's vocab_size 50"},
      {{header(1), bad_start}, ":2:", "answer_start must be in [1, context = 20)"},
      {{header(2), good}, ":2:", "announces 2 prompts, the file holds 1"},
      {{header(1), good, nlohmann::json::array({1})}, ":3:", "not a JSON object"},
  };
  for (const auto& c : cases) {
    const std::string e = error_of(c.lines);
    EXPECT_EQ(e.rfind("--niah-prompts: ", 0), 0u) << e;
    EXPECT_NE(e.find("bad.jsonl" + c.line), std::string::npos) << e;
    EXPECT_NE(e.find(c.says), std::string::npos) << e;
  }
  // A file tokenized for a larger vocabulary than the model's.
  const std::string path = write("big.jsonl", {header(1, 80), good});
  try {
    run_niah_prompts(path, kV, [](const at::Tensor& t) { return t.clone(); }, 1000);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size 80, above the model's 50"),
              std::string::npos)
        << e.what();
  }
}

// A tiny model whose vocabulary is another tokenizer's (vocab 64, EOS 1).
EvalModel bpe_model() {
  model::ModelConfig mc;
  mc.vocab = 64;
  mc.d_model = 16;
  mc.n_layers = 1;
  mc.n_heads = 2;
  mc.n_kv_heads = 1;
  mc.head_dim = 8;
  mc.ffn_hidden = 32;
  mc.dense_layers = {0};
  torch::manual_seed(1);
  EvalModel m;
  m.model = model::Llama(mc);
  m.model->eval();
  m.cfg.model.vocab = 64;
  m.cfg.train.context = 32;
  m.vocab.bytes = false;
  m.vocab.vocab_size = 64;
  m.vocab.eos_id = 1;
  m.vocab.bos_id = -1;
  m.vocab.pad_id = -1;
  m.source = "bpe-model";
  return m;
}

TEST_F(NiahPrompts, ANonByteModelNeedsAPromptFileInItsVocabulary) {
  EvalModel m = bpe_model();
  EvalOptions o;
  o.niah = true;
  o.niah_opts.contexts = {256};
  o.contexts_explicit = true;
  o.niah_opts.trials = 1;
  EvalHooks quiet;
  quiet.line = [](const std::string&) {};
  try {
    run_eval(m, o, quiet);
    ADD_FAILURE() << "byte prompts scored for a vocab_size 64 model";
  } catch (const std::invalid_argument& e) {
    const std::string s = e.what();
    EXPECT_EQ(s.rfind("--niah-prompts: ", 0), 0u) << s;
    EXPECT_NE(s.find("vocab_size 64"), std::string::npos) << s;
    EXPECT_NE(s.find("python -m lighthouse.eval.niah_prompts"), std::string::npos) << s;
  }
  // A file of another tokenizer (vocab 50) is refused by name; one of its own is scored.
  std::mt19937 rng(9);
  o.contexts_explicit = false;
  o.niah_prompts = write("other.jsonl", {header(1), prompt(rng, 20, 0, 0, 1)});
  try {
    run_eval(m, o, quiet);
    ADD_FAILURE() << "a vocab_size 50 prompt file scored for a vocab_size 64 model";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--niah-prompts: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("vocab_size 50"), std::string::npos) << e.what();
  }
  std::vector<nlohmann::json> lines = {header(4, 64)};
  for (int64_t t = 0; t < 4; ++t) lines.push_back(prompt(rng, 20, t < 2 ? 0 : 100, t, 2));
  o.niah_prompts = write("own.jsonl", lines);
  const auto j = run_eval(m, o, quiet);
  ASSERT_EQ(j["niah"]["cells"].size(), 2u);
  EXPECT_TRUE(j["niah"]["chance"].is_null());
  EXPECT_EQ(j["niah"]["prompts"], o.niah_prompts);
  EXPECT_EQ(j["niah"]["cells"][1]["depth"], 100);
  EXPECT_EQ(j["niah"]["cells"][1]["trials"], 2);
  o.depths_explicit = true;
  EXPECT_THROW(run_eval(m, o, quiet), std::invalid_argument);  // the file fixes the grid
}

}  // namespace
}  // namespace lighthouse::eval
