// In process: each rank's slice of the seeded order is the single-process order cut in rank
// order, and the ZeRO-1 ownership table covers every parameter, balanced, on every rank alike.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "dist/data_parallel.h"
#include "train/data.h"

namespace lighthouse::train {
namespace {

TEST(RankSlice, RanksTogetherReadTheSingleProcessOrder) {
  TokenStream s;
  for (int i = 0; i < 40 * 8 + 1; ++i) s.tokens.push_back(static_cast<uint16_t>((i * 7) % 251));
  SequenceLoader one(s, 8, 17, true);
  std::vector<SequenceLoader> ranks;
  for (int r = 0; r < 3; ++r) ranks.emplace_back(s, 8, 17, true);
  for (int step = 0; step < 20; ++step) {  // crosses epochs (40 sequences, 6 per step)
    const auto whole = one.next_batch(6);   // [6, 9]
    for (int r = 0; r < 3; ++r) {
      const auto part = ranks[r].next_batch(2, r, 3);  // [2, 9]
      EXPECT_TRUE(torch::equal(part, whole.narrow(0, 2 * r, 2))) << "step " << step << " rank " << r;
      EXPECT_EQ(ranks[r].cursor(), one.cursor());
    }
  }
  EXPECT_THROW(one.next_batch(1, 3, 3), c10::Error);
}

TEST(ShardOwners, EveryParameterOwnedOnceAndBalanced) {
  std::vector<at::Tensor> params;
  int64_t total = 0;
  for (int i = 0; i < 30; ++i) {
    params.push_back(torch::empty({1 + (i * 37) % 50, 1 + (i * 11) % 9}));
    total += params.back().numel();
  }
  for (const int ranks : {1, 2, 3, 4}) {
    const auto owners = dist::shard_owners(params, ranks);
    EXPECT_EQ(owners, dist::shard_owners(params, ranks));
    std::vector<int64_t> load(ranks, 0);
    int64_t largest = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      ASSERT_GE(owners[i], 0);
      ASSERT_LT(owners[i], ranks);
      load[owners[i]] += params[i].numel();
      largest = std::max(largest, params[i].numel());
    }
    const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
    EXPECT_LE(*hi - *lo, largest) << ranks << " ranks";  // greedy bound
    EXPECT_EQ(std::accumulate(load.begin(), load.end(), int64_t{0}), total);
  }
}

}  // namespace
}  // namespace lighthouse::train
