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
  EXPECT_FALSE(lighthouse::make_geometry(cfg, 65536 + 16, &g, &err));
  EXPECT_NE(err.find("divisible"), std::string::npos) << err;
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
