// NIAH: the prompt generator (exact length, needle at the requested depth within one filler
// word, filler without digits, answer position at the end of the query), distinct trials,
// scoring by argmax over the ten digit tokens, and the context/depth flags.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cctype>
#include <set>
#include <string>

#include "eval/eval.h"
#include "eval/niah.h"
#include "model/llama.h"

namespace lighthouse::eval {
namespace {

std::string text_of(const NiahCase& c) { return std::string(c.tokens.begin(), c.tokens.end()); }

TEST(NiahGenerator, NeedleAtTheDepthFillerWithoutDigitsAnswerAtTheEnd) {
  const std::string query = kNiahQuery, needle_head = kNiahNeedle;
  for (const int64_t context : {256, 1000, 4096}) {
    for (const int64_t depth : {0, 15, 30, 50, 70, 85, 100}) {
      for (uint64_t seed = 0; seed < 4; ++seed) {
        const NiahCase c = make_niah_case(context, depth, niah_trial_seed(seed, context, depth, 0));
        const std::string t = text_of(c);
        SCOPED_TRACE("context " + std::to_string(context) + " depth " + std::to_string(depth));
        ASSERT_EQ(static_cast<int64_t>(t.size()), context);
        EXPECT_EQ(c.answer_pos, context - 1);
        EXPECT_EQ(t.substr(t.size() - query.size()), query);  // the answer follows the query
        const std::string needle = needle_head + std::to_string(c.passkey) + ".\n";
        ASSERT_EQ(t.substr(c.needle_pos, needle.size()), needle);
        const double want = depth / 100.0 * static_cast<double>(c.filler_bytes);
        EXPECT_LE(std::abs(static_cast<double>(c.needle_pos) - want), kNiahMaxUnit);
        EXPECT_EQ(c.filler_bytes, context - static_cast<int64_t>(needle.size() + query.size()));
        // Filler: lowercase letters and spaces only; the passkey is the prompt's only digit.
        const std::string filler = t.substr(0, c.needle_pos) +
                                   t.substr(c.needle_pos + needle.size(),
                                            t.size() - query.size() - c.needle_pos - needle.size());
        ASSERT_EQ(static_cast<int64_t>(filler.size()), c.filler_bytes);
        for (const char ch : filler) ASSERT_TRUE(std::islower(ch) || ch == ' ') << int(ch);
        int digits = 0;
        for (const char ch : t) digits += std::isdigit(static_cast<unsigned char>(ch)) != 0;
        EXPECT_EQ(digits, 1);
      }
    }
  }
  EXPECT_EQ(make_niah_case(512, 0, 3).needle_pos, 0);
  const NiahCase end = make_niah_case(512, 100, 3);
  EXPECT_EQ(end.needle_pos, end.filler_bytes);
}

TEST(NiahGenerator, TrialsHaveDistinctSeedsAndPasskeys) {
  std::set<uint64_t> seeds;
  std::set<int> keys;
  std::set<std::string> prompts;
  for (int64_t t = 0; t < 40; ++t) {
    const uint64_t s = niah_trial_seed(0, 1024, 50, t);
    seeds.insert(s);
    const NiahCase c = make_niah_case(1024, 50, s);
    keys.insert(c.passkey);
    prompts.insert(text_of(c));
  }
  EXPECT_EQ(seeds.size(), 40u);
  EXPECT_EQ(prompts.size(), 40u);
  EXPECT_GE(keys.size(), 6u);
  EXPECT_NE(niah_trial_seed(0, 1024, 50, 0), niah_trial_seed(0, 2048, 50, 0));
  EXPECT_NE(niah_trial_seed(0, 1024, 50, 0), niah_trial_seed(0, 1024, 70, 0));
  EXPECT_EQ(text_of(make_niah_case(300, 30, 9)), text_of(make_niah_case(300, 30, 9)));
}

TEST(NiahGenerator, BadContextsAndDepthsNameTheFlag) {
  try {
    make_niah_case(20, 50, 0);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--niah-contexts: 20 is too short", 0), 0u) << e.what();
  }
  try {
    make_niah_case(512, 101, 0);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--niah-depths: must be in [0, 100]", 0), 0u);
  }
  NiahOptions o;
  o.trials = 0;
  EXPECT_THROW(run_niah(o, [](const at::Tensor& t) { return t; }), std::invalid_argument);
}

// A stub that always favours '7' among the digits (and favours a letter even more, which the
// scoring must ignore) scores exactly the fraction of prompts whose passkey is 7.
TEST(NiahScoring, StubFavouringSevenScoresTheFractionOfSevens) {
  NiahOptions o;
  o.contexts = {256, 512};
  o.depths = {0, 30, 100};
  o.trials = 20;
  o.seed = 5;
  o.batch_tokens = 256 * 3;  // batches of 3 prompts at 256, of 1 at 512
  int64_t calls = 0;
  const auto stub = [&](const at::Tensor& tokens) {
    ++calls;
    auto logits = torch::zeros({tokens.size(0), model::kVocab});  // [B, vocab]
    logits.select(1, '7').fill_(1.0);
    logits.select(1, 'a').fill_(5.0);
    return logits;
  };
  const NiahResult r = run_niah(o, stub);
  ASSERT_EQ(r.cells.size(), 6u);
  double mean = 0, lo = 1, hi = 0;
  for (const auto& cell : r.cells) {
    int sevens = 0;
    for (int64_t t = 0; t < o.trials; ++t)
      sevens += make_niah_case(cell.context, cell.depth,
                               niah_trial_seed(o.seed, cell.context, cell.depth, t))
                    .passkey == 7;
    EXPECT_EQ(cell.trials, 20);
    EXPECT_EQ(cell.correct, sevens);
    EXPECT_DOUBLE_EQ(cell.accuracy, sevens / 20.0);
    mean += cell.accuracy / 6;
    lo = std::min(lo, cell.accuracy), hi = std::max(hi, cell.accuracy);
  }
  EXPECT_DOUBLE_EQ(r.mean, mean);
  EXPECT_GT(hi, 0.0);  // the grid has sevens, and not only sevens
  EXPECT_LT(lo, 1.0);
  EXPECT_EQ(calls, 3 * 7 + 3 * 20);  // 20 trials per cell
  EXPECT_EQ(niah_digits(stub(torch::zeros({2, 4}))), (std::vector<int>{7, 7}));
}

TEST(NiahFlags, ContextsSkipBeyondTheTrainedContextUnlessListed) {
  EvalOptions o;
  std::vector<int64_t> skipped;
  EXPECT_EQ(niah_contexts(o, 16384, &skipped), (std::vector<int64_t>{4096, 8192, 16384}));
  EXPECT_EQ(skipped, (std::vector<int64_t>{32768, 65536, 98304}));
  EXPECT_EQ(niah_contexts(o, 2048, nullptr), (std::vector<int64_t>{512, 1024, 2048}));
  o.niah_opts.contexts = parse_sizes("1K, 64k,2048", "--niah-contexts");
  o.contexts_explicit = true;
  EXPECT_EQ(niah_contexts(o, 2048, nullptr), (std::vector<int64_t>{1024, 65536, 2048}));
  EXPECT_EQ(parse_modes("lighthouse,dense"),
            (std::vector<model::AttentionMode>{model::AttentionMode::Dense,
                                               model::AttentionMode::Lighthouse}));
  EXPECT_EQ(parse_modes(" lighthouse "),
            (std::vector<model::AttentionMode>{model::AttentionMode::Lighthouse}));
  EXPECT_THROW(parse_modes("dense,sparse"), std::invalid_argument);
  EXPECT_THROW(parse_modes("dense,dense"), std::invalid_argument);
  EXPECT_THROW(parse_sizes("1024,x", "--niah-depths"), std::invalid_argument);
  EXPECT_THROW(parse_sizes("", "--niah-depths"), std::invalid_argument);
}

}  // namespace
}  // namespace lighthouse::eval
