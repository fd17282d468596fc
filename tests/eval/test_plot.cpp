// The plotting path: PNG and SVG files are real images (magic bytes, a non-trivial size),
// written atomically; bad file names, unwritable folders and empty panels are clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "eval/figures.h"
#include "plot/plot.h"
#include "train/helpers.h"

namespace lighthouse::plot {
namespace {

using lighthouse::train::testing::read_file;
using lighthouse::train::testing::scratch_dir;

LinePanel curve() {
  LinePanel p;
  p.title = "loss";
  p.xlabel = "step";
  p.ylabel = "loss";
  Series a{"dense", {}, {}, 0};
  Series b{"lighthouse mode", {}, {}, 1, Style::Dashed};
  for (int i = 1; i <= 50; ++i) {
    a.x.push_back(i), a.y.push_back(5 * std::exp(-i / 20.0) + 1);
    b.x.push_back(i), b.y.push_back(4.8 * std::exp(-i / 20.0) + 1.1);
  }
  p.series = {a, b};
  return p;
}

HeatmapPanel grid() {
  HeatmapPanel h;
  h.title = "niah";
  h.columns = {"0", "50", "100"};
  h.rows = {"1K", "2K"};
  h.values = {{0.1, 0.5, 1.0}, {0.0, std::nan(""), 0.7}};
  return h;
}

bool is_png(const std::string& bytes) {
  return bytes.size() > 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

TEST(Plot, WritesRealPngAndSvgImages) {
  const std::string dir = scratch_dir("img");
  write_lines(dir + "/lines.png", {curve(), curve()});
  write_heatmaps(dir + "/heat.png", {grid()});
  write_lines(dir + "/lines.svg", {curve()});
  for (const char* f : {"/lines.png", "/heat.png"}) {
    const std::string bytes = read_file(dir + f);
    EXPECT_TRUE(is_png(bytes)) << f;
    EXPECT_GT(bytes.size(), 5000u) << f;
  }
  const std::string svg = read_file(dir + "/lines.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_GT(svg.size(), 5000u);
  EXPECT_FALSE(std::filesystem::exists(dir + "/lines.png.partial"));
}

TEST(Plot, BadInputIsAClearError) {
  const std::string dir = scratch_dir("bad");
  const auto error = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const PlotError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(error([&] { write_lines(dir + "/x.jpg", {curve()}); }).find("ending in .png or .svg"),
            std::string::npos);
  EXPECT_NE(error([&] {
              write_lines(dir + "/no/such/dir/x.png", {curve()});
            }).find("cannot write " + dir + "/no/such/dir/x.png"),
            std::string::npos);
  LinePanel empty;
  empty.title = "empty";
  EXPECT_NE(error([&] { write_lines(dir + "/e.png", {empty}); }).find("no points"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir + "/e.png"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/e.png.partial"));
  HeatmapPanel ragged = grid();
  ragged.values[1].pop_back();
  EXPECT_NE(error([&] { write_heatmaps(dir + "/r.png", {ragged}); }).find("row of 2 values"),
            std::string::npos);
}

TEST(Plot, LatencyFigureOfTheCommittedBenchResult) {
  const std::string dir = scratch_dir("bench");
  const auto bench = nlohmann::json::parse(
      read_file(LIGHTHOUSE_SOURCE_DIR "/docs/results/2026-11-22-h100-op-bench.json"));
  const LinePanel p = eval::latency_panel(bench);
  ASSERT_GE(p.series.size(), 4u);
  EXPECT_EQ(p.series[0].x.size(), bench["points"].size());
  EXPECT_FALSE(p.notes.empty());  // speedups annotated
  write_lines(dir + "/latency.png", {p});
  EXPECT_TRUE(is_png(read_file(dir + "/latency.png")));
  EXPECT_THROW(eval::latency_panel(nlohmann::json::object()), std::runtime_error);
}

}  // namespace
}  // namespace lighthouse::plot
