// Config validation and plan geometry (SPEC.md §2, §4, §6).
#include <gtest/gtest.h>

#include "lighthouse/config.h"

using lighthouse::Config;
using lighthouse::Geometry;

TEST(Geometry, PaperExample) {
  Config cfg;
  cfg.levels = 3;
  cfg.pool = 4;
  cfg.topk = 2048;
  Geometry g;
  std::string err;
  ASSERT_TRUE(lighthouse::make_geometry(cfg, 524288, &g, &err)) << err;
  EXPECT_EQ(g.S, 49152);
  EXPECT_EQ(g.Nc, 32768);
  EXPECT_EQ(g.T, 16);
  EXPECT_EQ(g.C, 2048);
  EXPECT_EQ(g.P, 524288 + 131072 + 32768);
  EXPECT_EQ(lighthouse::seq_len_from_pyramid(g.P, 3, 4), 524288);
}

TEST(Geometry, RejectsWithNamedParameter) {
  Config cfg;
  Geometry g;
  std::string err;
  cfg.pool = 3;
  EXPECT_FALSE(lighthouse::make_geometry(cfg, 65536, &g, &err));
  EXPECT_NE(err.find("pool"), std::string::npos) << err;
  cfg = Config{};
  EXPECT_FALSE(lighthouse::make_geometry(cfg, 0, &g, &err));
  EXPECT_NE(err.find("sequence length N must be positive, got 0"), std::string::npos) << err;
}

// Any N (SPEC.md §2): 65,552 = 4097 coarsest windows of 16 in tiles of C = 257 (the last
// one 242), no tail; 65,541 has 4096 windows in 16 tiles of 256 and a level-0 tail of 5.
TEST(Geometry, RaggedLengths) {
  Config cfg;
  Geometry g;
  std::string err;
  ASSERT_TRUE(lighthouse::make_geometry(cfg, 65536 + 16, &g, &err)) << err;
  EXPECT_EQ(g.Nc, 4097);
  EXPECT_EQ(g.C, 257);
  EXPECT_EQ(g.tiles, 16);
  EXPECT_EQ(g.C_last, 4097 - 15 * 257);
  EXPECT_EQ(g.S, 4097 + 16 * 2 * 128 * 4);
  ASSERT_TRUE(lighthouse::make_geometry(cfg, 65536 + 5, &g, &err)) << err;
  EXPECT_EQ(g.tail, 5);
  EXPECT_EQ(g.S, 4096 + 2 * 4 * 2048 + 5);
  EXPECT_EQ(g.P, 65541 + 16384 + 4096);
  ASSERT_TRUE(lighthouse::make_geometry(cfg, 1, &g, &err)) << err;  // all tail
  EXPECT_EQ(g.tiles, 0);
  EXPECT_EQ(g.S, 1);
  EXPECT_EQ(g.P, 1);
  // Scatter entries past the pyramid do not exist.
  g = lighthouse::level_geometry(3, 4, 70);  // Nf = 64: level 1 has 16 entries
  EXPECT_EQ(lighthouse::scatter_entry(g, 1, 62), 14);
  EXPECT_EQ(lighthouse::scatter_entry(g, 1, 67), -1);
  EXPECT_EQ(lighthouse::window_entry(g, 1, 63), 15);
  EXPECT_EQ(lighthouse::window_entry(g, 1, 64), -1);
  EXPECT_EQ(lighthouse::level_of(g, 70 + 16 + 3), 2);
}

TEST(Geometry, ScatterRangeIsShiftedWindow) {
  Geometry g = lighthouse::level_geometry(3, 4, 64);
  auto r = lighthouse::scatter_range(g, 1, 0);
  EXPECT_EQ(r.first, 3);
  EXPECT_EQ(r.last, 6);
  r = lighthouse::scatter_range(g, 2, 3);  // window [48, 64) -> [63, 78] clipped to 63
  EXPECT_EQ(r.first, 63);
  EXPECT_EQ(r.last, 63);
}
