// The retrieval test (eval/retrieval.h): a model that always answers the same value scores
// chance; a model that looks the record up scores 1.0 at every distance; one that can only
// look back a window scores 1.0 inside it and chance beyond it; the model's sliding-window
// attention equals a float64 masked reference, and a Llama under the window cannot see a
// record beyond its stack's reach; `lighthouse eval --retrieval` end to end.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/retrieval.h"
#include "model/layers.h"
#include "model/llama.h"
#include "train/helpers.h"
#include "train/rng.h"

namespace lighthouse::eval {
namespace {

constexpr int64_t kContext = 1024;

train::NeedleConfig small_needles(int64_t value_length) {
  train::NeedleConfig c;
  c.records = 12;
  c.queries = 4;
  c.key_length = 2;
  c.value_length = value_length;
  c.symbols = 8;  // chance: 1/8 a token
  c.min_distance = 8;
  c.distractors = 0.25;
  EXPECT_EQ(train::check_needles(c, kContext).first, "");  // a config training accepts
  return c;
}

// Random byte text of `sequences` sequences.
train::TokenStream byte_text(int64_t sequences) {
  train::TokenStream s;
  train::SplitMix64 r(11);
  s.tokens.resize(static_cast<size_t>(sequences * kContext + 1));
  for (auto& t : s.tokens) t = static_cast<uint16_t>(r.below(256));
  return s;
}

// Logits that look every query's record up within the last `window` positions (0 = all) and
// put all the mass on its value token; anything else (and a record out of reach) answers
// value symbol 0.
RetrievalLogits lookup(const train::NeedleConfig& c, const train::NeedleIds& ids,
                       int64_t window) {
  return [c, ids, window](const at::Tensor& tokens) {
    const int64_t B = tokens.size(0), N = tokens.size(1), K = c.key_length;
    auto out = torch::zeros({B, N, ids.end()});  // [B, N, vocab]
    out.select(2, ids.value(0)).fill_(5);
    const auto t = tokens.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t qp = 0; qp < N; ++qp) {
        if (t[b][qp] != ids.query()) continue;
        for (int64_t j = 0; j < c.value_length && qp + K + j < N; ++j) {
          const int64_t at = qp + K + j;  // predicts value token j
          for (int64_t rp = qp - 1; rp >= 0; --rp) {
            bool match = t[b][rp] == ids.record();
            for (int64_t i = 0; i < K && match; ++i) match = t[b][rp + 1 + i] == t[b][qp + 1 + i];
            if (!match) continue;
            const int64_t src = rp + 1 + K + j;
            if (window == 0 || at - src < window) out[b][at][t[b][src]] = 30;
            break;
          }
        }
      }
    return out;
  };
}

RetrievalOptions options(int64_t sequences) {
  RetrievalOptions o;
  o.sequences = sequences;
  o.edges = {64, 256};
  o.batch_tokens = 8 * kContext;
  return o;
}

TEST(Retrieval, AConstantAnswerScoresChance) {
  for (const int64_t V : {1, 2}) {
    const train::NeedleConfig c = small_needles(V);
    const train::NeedleIds ids{model::kVocab, c.symbols};
    const RetrievalScore s =
        score_retrieval(byte_text(5), c, ids, kContext, options(150),
                        [&](const at::Tensor& tokens) {
                          auto out = torch::zeros({tokens.size(0), tokens.size(1), ids.end()});
                          out.select(2, ids.value(1)).fill_(1);  // [B, N, vocab]
                          return out;
                        });
    EXPECT_EQ(s.all.queries, 150 * c.queries);
    const double chance = retrieval_chance(c)["exact_match"].get<double>();
    EXPECT_NEAR(static_cast<double>(s.all.exact) / s.all.queries, chance, 0.05) << V;
    EXPECT_NEAR(static_cast<double>(s.all.tokens_right) / s.all.tokens, 0.125, 0.04) << V;
  }
}

TEST(Retrieval, ALookupScoresOneAtEveryDistance) {
  const train::NeedleConfig c = small_needles(2);
  const train::NeedleIds ids{model::kVocab, c.symbols};
  const RetrievalScore s = score_retrieval(byte_text(3), c, ids, kContext, options(20),
                                           lookup(c, ids, 0));
  EXPECT_EQ(s.all.exact, s.all.queries);
  EXPECT_LT(s.all.loss_sum / s.all.tokens, 1e-6);
  ASSERT_EQ(s.buckets.size(), 3u);  // <64, 64-256, 256-1K
  for (const auto& b : s.buckets) {
    EXPECT_GT(b.queries, 0) << b.lo;
    EXPECT_EQ(b.exact, b.queries) << b.lo;
  }
  const auto j = retrieval_json(s);
  EXPECT_EQ(j["exact_match"].get<double>(), 1.0);
  EXPECT_EQ(j["buckets"][1]["range"], "64-256");
  EXPECT_EQ(j["buckets"][2]["range"], "256-1K");
}

TEST(Retrieval, AWindowedLookupFallsToChanceBeyondItsWindow) {
  const train::NeedleConfig c = small_needles(1);
  const train::NeedleIds ids{model::kVocab, c.symbols};
  const RetrievalScore s = score_retrieval(byte_text(3), c, ids, kContext, options(100),
                                           lookup(c, ids, 48));
  ASSERT_EQ(s.buckets.size(), 3u);
  const auto rate = [](const RetrievalBucket& b) {
    return static_cast<double>(b.exact) / static_cast<double>(b.queries);
  };
  EXPECT_GT(rate(s.buckets[0]), 0.75);  // < 64: mostly within the 48 positions
  EXPECT_NEAR(rate(s.buckets[1]), 0.125, 0.06);  // beyond: chance (1/8)
  EXPECT_NEAR(rate(s.buckets[2]), 0.125, 0.06);
}

TEST(Retrieval, SlidingWindowAttentionMatchesAMaskedReference) {
  torch::manual_seed(3);
  const int64_t B = 2, N = 37, H = 4, Hkv = 2, D = 8, W = 7;
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  const auto q = torch::randn({B, N, H, D}, opts), k = torch::randn({B, N, Hkv, D}, opts),
             v = torch::randn({B, N, Hkv, D}, opts);
  const at::Tensor got = model::sliding_window_attention(q, k, v, W);  // [B, N, H, D]
  const auto kk = k.repeat_interleave(H / Hkv, 2), vv = v.repeat_interleave(H / Hkv, 2);
  const auto s = torch::einsum("bihd,bjhd->bhij", {q, kk}) / std::sqrt(static_cast<double>(D));
  const auto i = torch::arange(N).unsqueeze(1), j = torch::arange(N).unsqueeze(0);
  const auto allowed = (j <= i).logical_and(i - j < W);  // [N, N]
  const auto p = s.masked_fill(allowed.logical_not(), -INFINITY).softmax(-1);
  const auto want = torch::einsum("bhij,bjhd->bihd", {p, vv});
  EXPECT_TRUE(torch::allclose(got, want, 1e-10, 1e-10));
  // A window as long as the sequence is plain causal attention.
  const auto full = model::sliding_window_attention(q, k, v, N);
  const auto causal = s.masked_fill((j <= i).logical_not(), -INFINITY).softmax(-1);
  EXPECT_TRUE(torch::allclose(full, torch::einsum("bhij,bjhd->bihd", {causal, vv}), 1e-10, 1e-10));
}

// A 2-layer model under a window of W sees 2 x (W - 1) positions back: a token further back
// cannot change the logits (so a record there cannot be retrieved), a nearer one does.
TEST(Retrieval, AWindowedModelCannotSeeBeyondItsReach) {
  torch::manual_seed(0);
  model::ModelConfig mc;
  mc.vocab = 300;
  mc.d_model = 32;
  mc.n_layers = 2;
  mc.n_heads = 2;
  mc.n_kv_heads = 1;
  mc.head_dim = 16;
  mc.ffn_hidden = 64;
  model::Llama m(mc);
  m->eval();
  torch::NoGradGuard no_grad;
  const int64_t N = 200, W = 20, t = N - 1, reach = 2 * (W - 1);
  const auto tokens = torch::randint(0, 256, {1, N}, torch::kLong);
  m->set_dense_window(W);
  const auto base = m->forward(tokens)[0][t];
  auto far = tokens.clone(), near = tokens.clone();
  far.slice(1, 0, t - reach) = (far.slice(1, 0, t - reach) + 1) % 256;
  near[0][t - reach] = (near[0][t - reach] + 1) % 256;
  EXPECT_TRUE(torch::equal(m->forward(far)[0][t], base));
  EXPECT_GT((m->forward(near)[0][t] - base).abs().max().item<double>(), 1e-6);
  m->set_dense_window(0);  // the whole prefix again: the far change shows
  EXPECT_GT((m->forward(far)[0][t] - m->forward(tokens)[0][t]).abs().max().item<double>(), 1e-6);
}

TEST(Retrieval, EvalRetrievalThroughTheBinary) {
  using train::testing::read_file;
  using train::testing::run_cli;
  const std::string dir = train::testing::scratch_dir("retrieval-cli");
  train::testing::write_file(dir + "/t.toml", train::testing::kTestToml);
  auto r = run_cli(dir, {"train", "--config", dir + "/t.toml", "--set", "run.dir=" + dir + "/run",
                         "--set", "train.steps=2", "--set", "train.stage1_steps=1", "--set",
                         "schedule.warmup_steps=1", "--set", "data.needles.records=8", "--set",
                         "data.needles.min_distance=16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli(dir, {"eval", "--run", dir + "/run", "--retrieval", "--retrieval-sequences", "3",
                    "--retrieval-window", "16", "--retrieval-buckets", "32,128", "--device",
                    "cpu", "--json", dir + "/r.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| distance | queries |"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(read_file(dir + "/r.json"))["retrieval"];
  EXPECT_EQ(j["full"]["queries"], 3 * 4);
  EXPECT_EQ(j["full"]["buckets"].size(), 3u);
  EXPECT_EQ(j["window"]["receptive_field"], 3 * 15 + 1);
  EXPECT_EQ(j["window"]["score"]["queries"], 3 * 4);
  EXPECT_DOUBLE_EQ(j["chance"]["token_accuracy"].get<double>(), 1.0 / 64);
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"--retrieval-window", "-1"}, {"--retrieval-sequences", "0"},
           {"--retrieval-buckets", "128,32"}}) {
    std::vector<std::string> args = {"eval", "--run", dir + "/run", "--retrieval"};
    args.insert(args.end(), bad.begin(), bad.end());
    r = run_cli(dir, args);
    EXPECT_NE(r.exit_code, 0) << bad[0];
    EXPECT_NE(r.err.find(bad[0]), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace lighthouse::eval
