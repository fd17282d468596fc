// The project's one plotting path: figures drawn by PLplot (Debian's libplplot-dev with the
// cairo driver, plplot-driver-cairo) into PNG or SVG files, chosen by the file's extension.
// Torch-free: callers pass plain numbers. Line panels (loss curves, latency vs N) and heatmap
// panels (NIAH accuracy by context and depth) are laid out side by side in one image.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lighthouse::plot {

// A figure that cannot be drawn or written; what() names the file or the bad input.
class PlotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Style { Solid, Dashed, Dotted };
enum class Marker { None, Circle, Square, Cross };

constexpr int kGrey = -1;  // Series::color for reference lines; 0.. index the palette

struct Series {
  std::string label;         // "" = not in the legend
  std::vector<double> x, y;  // same length; non-finite points are skipped
  int color = 0;             // palette index (tab10 order) or kGrey
  Style style = Style::Solid;
  Marker marker = Marker::None;
  bool line = true;  // false: markers only
};

struct Note {  // text at data coordinates
  double x = 0, y = 0;
  std::string text;
};

// Ticks of a log axis: powers of two labelled 4K, 1M, ... (Pow2), or decades labelled plainly.
enum class Axis { Linear, Log10, Pow2 };

enum class Corner { TopRight, TopLeft, BottomRight, BottomLeft };

struct LinePanel {
  std::string title, xlabel, ylabel;
  Axis xaxis = Axis::Linear, yaxis = Axis::Linear;
  Corner legend = Corner::TopRight;  // where the legend sits inside the panel
  std::vector<Series> series;
  std::vector<Note> notes;
};

struct HeatmapPanel {
  std::string title, xlabel, ylabel;
  std::vector<std::string> columns, rows;   // labels of the x cells and the y cells
  std::vector<std::vector<double>> values;  // [row][column]; NaN = not measured
  double vmin = 0, vmax = 1;
  int digits = 2;  // decimals of the value printed in each cell
};

// Writes the panels side by side into `path` (.png or .svg), `width` x `height` pixels per
// panel. The file is written to a temporary name and renamed, so a failed plot leaves no
// partial image. Throws PlotError (bad extension, empty panel, unwritable file, no driver).
void write_lines(const std::string& path, const std::vector<LinePanel>& panels, int width = 900,
                 int height = 600);
void write_heatmaps(const std::string& path, const std::vector<HeatmapPanel>& panels,
                    int width = 700, int height = 500);

}  // namespace lighthouse::plot
