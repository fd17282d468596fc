// The one progress implementation (src/cli/progress.h): in place with "\r...\033[K" on a
// terminal; elsewhere plain lines with rate and ETA, spaced by the interval, no control
// characters, and always the final line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "cli/progress.h"

namespace lighthouse::cli {
namespace {

// Everything written to `f` so far.
std::string contents(std::FILE* f) {
  std::fflush(f);
  std::string s(static_cast<size_t>(std::ftell(f)), '\0');
  std::rewind(f);
  const size_t n = std::fread(s.data(), 1, s.size(), f);
  s.resize(n);
  return s;
}

bool has_control(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 && c != '\n'; });
}

TEST(Progress, PlainLinesWhenNotATerminal) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("bench", 4, "runs", f, /*terminal=*/false, /*interval_s=*/0.0);
    for (int i = 1; i <= 4; ++i) p.update(i, "case " + std::to_string(i));
    p.clear();    // nothing to erase off a terminal
    p.update(4);  // the final line is written once
  }
  const std::string out = contents(f);
  std::fclose(f);
  EXPECT_FALSE(has_control(out)) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 4) << out;
  EXPECT_NE(out.find("[bench] 1/4 runs"), std::string::npos) << out;
  EXPECT_NE(out.find("runs/s"), std::string::npos) << out;
  EXPECT_NE(out.find("ETA"), std::string::npos) << out;
  EXPECT_NE(out.find("[bench] 4/4 runs"), std::string::npos) << out;
  EXPECT_NE(out.find("case 3"), std::string::npos) << out;
}

TEST(Progress, PlainLinesAreSpacedByTheInterval) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("train", 1000, "tok", f, /*terminal=*/false, /*interval_s=*/3600.0);
    for (int i = 0; i <= 1000; i += 10) p.update(i);
  }
  const std::string out = contents(f);
  std::fclose(f);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;  // only the final line
  EXPECT_NE(out.find("[train] 1k/1k tok"), std::string::npos) << out;
}

TEST(Progress, RedrawnInPlaceOnATerminal) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("train", 2, "tok", f, /*terminal=*/true, Progress::kPlainInterval);
    p.update(1, "loss 2.5");
    p.clear();
    p.update(2);
  }
  const std::string out = contents(f);
  std::fclose(f);
  EXPECT_EQ(out.rfind("\r[train] 1/2 tok", 0), 0u) << out;
  EXPECT_NE(out.find("\033[K"), std::string::npos);
  EXPECT_NE(out.find("loss 2.5\033[K\r\033[K\r[train] 2/2 tok"), std::string::npos) << out;
  EXPECT_EQ(out.back(), '\n');
}

TEST(Progress, CountsAndDurationsAreShort) {
  EXPECT_EQ(Progress::count(999), "999");
  EXPECT_EQ(Progress::count(1234), "1.23k");
  EXPECT_EQ(Progress::count(45.6e6), "45.6M");
  EXPECT_EQ(Progress::count(0.5), "0.5");
  EXPECT_EQ(Progress::duration(42), "42s");
  EXPECT_EQ(Progress::duration(187), "3m07s");
  EXPECT_EQ(Progress::duration(7500), "2h05m");
}

}  // namespace
}  // namespace lighthouse::cli
