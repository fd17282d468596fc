// data.needles (train/needles.h): the records and queries written over a sequence keep to
// their reserved ids and leave the text elsewhere untouched, respect the minimum distance,
// distractors differ from their queried key in exactly one token, the draw is a pure function
// of (stream, seed, index), both runs of a pair read the same batches, and bad values are
// refused naming their key.
#include <gtest/gtest.h>

#include <set>

#include "train/needles.h"
#include "train/rng.h"
#include "train/trainer.h"
#include "helpers.h"

namespace lighthouse::train {
namespace {

NeedleConfig needles(int64_t records = 16) {
  NeedleConfig c;
  c.records = records;
  c.queries = 4;
  c.key_length = 2;
  c.value_length = 3;
  c.symbols = 16;
  c.min_distance = 300;
  c.distractors = 0.25;
  return c;
}

constexpr int64_t kContext = 2048, kBase = 259;

// Random text ids below kBase.
std::vector<int64_t> text(uint64_t seed) {
  SplitMix64 r(seed);
  std::vector<int64_t> t(kContext + 1);
  for (auto& x : t) x = static_cast<int64_t>(r.below(kBase));
  return t;
}

TEST(Needles, WriteOnlyReservedIdsAndOnlyInTheirSpans) {
  const NeedleConfig c = needles();
  ASSERT_EQ(check_needles(c, kContext).first, "");
  const NeedleIds ids{kBase, c.symbols};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const std::vector<int64_t> before = text(seed);
    std::vector<int64_t> seq = before;
    const NeedlePlacement p = inject_needles(c, ids, seed, seq.data(), kContext + 1);
    ASSERT_EQ(static_cast<int64_t>(p.records.size()), c.records);
    ASSERT_EQ(static_cast<int64_t>(p.queries.size()), c.queries);
    std::vector<int> covered(seq.size(), 0);
    const int64_t span = needle_span(c);
    const auto check = [&](int64_t pos, int64_t marker, const NeedleRecord& r) {
      EXPECT_EQ(seq[pos], marker);
      for (int64_t j = 0; j < c.key_length; ++j) EXPECT_EQ(seq[pos + 1 + j], ids.key(r.key[j]));
      for (int64_t j = 0; j < c.value_length; ++j)
        EXPECT_EQ(seq[pos + 1 + c.key_length + j], ids.value(r.value[j]));
      for (int64_t t = pos; t < pos + span; ++t) ++covered[t];
    };
    for (const auto& r : p.records) check(r.pos, ids.record(), r);
    for (const auto& q : p.queries) check(q.pos, ids.query(), p.records[q.record]);
    for (size_t t = 0; t < seq.size(); ++t) {
      ASSERT_LE(covered[t], 1) << "overlapping needles at " << t;
      if (covered[t]) {
        EXPECT_GE(seq[t], ids.base);
        EXPECT_LT(seq[t], ids.end());
      } else {
        EXPECT_EQ(seq[t], before[t]) << "text changed at " << t;  // and so below kBase
      }
    }
    EXPECT_EQ(p.queries.back().pos + span, kContext + 1);  // the queries close the sequence
  }
}

TEST(Needles, DistancesRespectTheMinimumAndSpreadOverTheContext) {
  const NeedleConfig c = needles();
  const NeedleIds ids{kBase, c.symbols};
  int64_t far = 0, near = 0, total = 0;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    std::vector<int64_t> seq = text(seed);
    const NeedlePlacement p = inject_needles(c, ids, seed, seq.data(), kContext + 1);
    for (const auto& q : p.queries) {
      const NeedleRecord& r = p.records[q.record];
      EXPECT_EQ(r.kind, NeedleKind::Queried);
      EXPECT_EQ(q.distance, q.pos - r.pos);
      EXPECT_GE(q.distance, c.min_distance);
      EXPECT_EQ(q.value_pos, q.pos + 1 + c.key_length);
      far += q.distance >= 1024;
      near += q.distance < 512;
      ++total;
    }
  }
  EXPECT_GT(far, total / 8);  // log-uniform over [300, ~2K]: both ends get a share
  EXPECT_GT(near, total / 8);
}

TEST(Needles, DistractorsDifferFromTheirQueriedKeyInExactlyOneToken) {
  NeedleConfig c = needles(20);
  c.distractors = 0.5;
  const NeedleIds ids{kBase, c.symbols};
  for (uint64_t seed = 0; seed < 30; ++seed) {
    std::vector<int64_t> seq = text(seed);
    const NeedlePlacement p = inject_needles(c, ids, seed, seq.data(), kContext + 1);
    std::set<std::vector<int64_t>> keys;
    int64_t distractors = 0;
    for (const auto& r : p.records) {
      keys.insert(r.key);
      if (r.kind != NeedleKind::Distractor) continue;
      ++distractors;
      ASSERT_GE(r.of, 0);
      ASSERT_LT(r.of, c.queries);
      const auto& k = p.records[r.of].key;
      EXPECT_EQ(p.records[r.of].kind, NeedleKind::Queried);
      int differ = 0;
      for (int64_t j = 0; j < c.key_length; ++j) differ += k[j] != r.key[j];
      EXPECT_EQ(differ, 1);
    }
    EXPECT_EQ(distractors, needle_distractor_count(c));
    EXPECT_EQ(static_cast<int64_t>(keys.size()), c.records);  // every key distinct
  }
}

TEST(Needles, TheDrawIsAFunctionOfStreamSeedAndIndex) {
  const NeedleConfig c = needles();
  const NeedleIds ids{kBase, c.symbols};
  const auto draw = [&](NeedleStream s, uint64_t seed, int64_t index) {
    std::vector<int64_t> seq = text(7);
    inject_needles(c, ids, needle_seed(s, seed, index), seq.data(), kContext + 1);
    return seq;
  };
  EXPECT_EQ(draw(NeedleStream::Train, 3, 5), draw(NeedleStream::Train, 3, 5));
  EXPECT_NE(draw(NeedleStream::Train, 3, 5), draw(NeedleStream::Train, 3, 6));
  EXPECT_NE(draw(NeedleStream::Train, 3, 5), draw(NeedleStream::Train, 4, 5));
  EXPECT_NE(draw(NeedleStream::Train, 3, 5), draw(NeedleStream::Eval, 3, 5));
  // Validation needles are the same in every run, whatever its seed.
  EXPECT_EQ(draw(NeedleStream::Validation, 3, 5), draw(NeedleStream::Validation, 4, 5));
  EXPECT_NE(draw(NeedleStream::Validation, 3, 5), draw(NeedleStream::Validation, 3, 6));
}

// The dense and Lighthouse runs of a pair read identical batches, needles included, and the
// model's vocabulary grows by the reserved ids.
TEST(Needles, BothRunsOfAPairReadTheSameBatches) {
  const std::string dir = testing::scratch_dir("needles-pair");
  testing::write_file(dir + "/t.toml", testing::kTestToml);
  const Overrides common = {{"data.needles.records", "8"}, {"data.needles.min_distance", "32"}};
  Overrides dense = common, lh = common;
  dense.emplace_back("train.attention", "dense");
  dense.emplace_back("run.dir", dir + "/dense");
  lh.emplace_back("run.dir", dir + "/lh");
  auto a = open_session({dir + "/t.toml", dense});
  auto b = open_session({dir + "/t.toml", lh});
  const NeedleIds ids{model::kVocab, a->cfg.data.needles.symbols};
  EXPECT_EQ(a->cfg.model.vocab, ids.end());
  for (int i = 0; i < 3; ++i) {
    const at::Tensor x = a->train_loader->next_batch(2), y = b->train_loader->next_batch(2);
    EXPECT_TRUE(torch::equal(x, y));
    EXPECT_EQ(x.ge(ids.query()).logical_and(x.lt(ids.key(0))).sum().item<int64_t>(),
              2 * a->cfg.data.needles.queries);  // every sequence carries its queries
  }
  EXPECT_TRUE(torch::equal(a->val_loader->batch_at(0, 1), b->val_loader->batch_at(0, 1)));
}

TEST(Needles, BadValuesAreRefusedNamingTheirKey) {
  for (const auto& [kv, key] : std::vector<std::pair<std::string, std::string>>{
           {"data.needles.records=-1", "data.needles.records"},
           {"data.needles.records=2000", "data.needles.records"},
           {"data.needles.key_length=0", "data.needles.key_length"},
           {"data.needles.value_length=0", "data.needles.value_length"},
           {"data.needles.symbols=1", "data.needles.symbols"},
           {"data.needles.queries=0", "data.needles.queries"},
           {"data.needles.queries=16", "data.needles.queries"},
           {"data.needles.distractors=1.0", "data.needles.distractors"},
           {"data.needles.min_distance=-1", "data.needles.min_distance"},
           {"data.needles.min_distance=2000", "data.needles.min_distance"}}) {
    RunConfig c;
    apply_override(c, "data.needles.records=16");
    apply_override(c, kv);
    try {
      validate(c);
      ADD_FAILURE() << kv << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(key + ":", 0), 0u) << kv << ": " << e.what();
    }
  }
  RunConfig c;
  apply_override(c, "data.needles.records=16");
  apply_override(c, "data.needles.symbols=3");  // 3^2 = 9 keys < 2 x 16
  EXPECT_THROW(validate(c), ConfigError);
  apply_override(c, "data.needles.symbols=64");
  EXPECT_NO_THROW(validate(c));
}

}  // namespace
}  // namespace lighthouse::train
