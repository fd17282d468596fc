// PLplot figures (plot.h): one stream per file, the cairo driver's pngcairo / svgcairo device,
// a white background with a tab10-like palette, line panels with custom log-axis labels and
// a legend, heatmap panels through plimage with the value printed in every cell.
#include "plot/plot.h"

#include <plplot/plstream.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

namespace lighthouse::plot {
namespace {

std::string& abort_message() {
  static std::string msg;
  return msg;
}

void on_abort(const char* msg) { abort_message() = msg ? msg : "unknown error"; }

int on_exit(const char* msg) {  // PLplot exits the process after this; say why first
  std::fprintf(stderr, "lighthouse: error: plot: PLplot: %s\n", msg ? msg : "fatal error");
  return 1;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string device_for(const std::string& path) {
  if (ends_with(path, ".png")) return "pngcairo";
  if (ends_with(path, ".svg")) return "svgcairo";
  throw PlotError("plot: " + path + ": expected a file name ending in .png or .svg");
}

void require_device(const std::string& dev) {
  std::vector<const char*> menu(256), names(256);  // plgDevs fills caller-owned arrays
  const char** menu_p = menu.data();
  const char** names_p = names.data();
  int n = static_cast<int>(names.size());
  plgDevs(&menu_p, &names_p, &n);
  for (int i = 0; i < n; ++i)
    if (dev == names[i]) return;
  throw PlotError("plot: PLplot has no " + dev +
                  " device (install the Debian package plplot-driver-cairo)");
}

// Palette (cmap0): 0 background, 1 axes and text, 2 grid grey, 3.. the series colours.
const int kPalette[][3] = {{255, 255, 255}, {0, 0, 0},       {200, 200, 200}, {31, 119, 180},
                           {255, 127, 14},  {44, 160, 44},   {214, 39, 40},   {148, 103, 189},
                           {140, 86, 75},   {227, 119, 194}, {127, 127, 127}, {188, 189, 34},
                           {23, 190, 207},  {120, 120, 120}, {60, 60, 60},    {255, 255, 255}};
constexpr int kSeriesColors = 10;

int color_index(int c) {
  return c == kGrey ? 13 : 3 + ((c % kSeriesColors) + kSeriesColors) % kSeriesColors;
}

void set_palette(plstream& pls) {
  PLINT r[16], g[16], b[16];
  for (int i = 0; i < 16; ++i) r[i] = kPalette[i][0], g[i] = kPalette[i][1], b[i] = kPalette[i][2];
  pls.scmap0(r, g, b, 16);
}

// Opens a stream on a temporary file beside `path`, runs draw, closes the stream and renames
// the file into place after checking it was written.
void render(const std::string& path, int width, int height, int panels,
            const std::function<void(plstream&)>& draw) {
  const std::string dev = device_for(path);
  if (width < 100 || height < 100)
    throw PlotError("plot: width and height must be >= 100 pixels, got " + std::to_string(width) +
                    " x " + std::to_string(height));
  require_device(dev);
  const std::string tmp = path + ".partial";
  if (std::FILE* f = std::fopen(tmp.c_str(), "wb")) {
    std::fclose(f);
  } else {
    throw PlotError("plot: cannot write " + path + ": " + std::strerror(errno));
  }
  abort_message().clear();
  plsexit(on_exit);
  plsabort(on_abort);
  try {
    plstream pls;
    pls.sdev(dev.c_str());
    pls.sfnam(tmp.c_str());
    pls.spage(0, 0, width * panels, height, 0, 0);
    set_palette(pls);
    pls.init();
    pls.ssub(panels, 1);
    pls.schr(0, 0.9);
    draw(pls);
  } catch (...) {  // ~plstream has ended the stream
    std::remove(tmp.c_str());
    throw;
  }
  struct stat st {};
  if (!abort_message().empty()) {
    std::remove(tmp.c_str());
    throw PlotError("plot: " + path + ": PLplot: " + abort_message());
  }
  if (::stat(tmp.c_str(), &st) != 0 || st.st_size < 64) {
    std::remove(tmp.c_str());
    throw PlotError("plot: " + path + ": PLplot wrote no image");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw PlotError("plot: cannot write " + path + ": " + std::strerror(errno));
}

double transform(Axis a, double v) { return a == Axis::Linear ? v : std::log10(v); }

bool usable(Axis a, double v) { return std::isfinite(v) && (a == Axis::Linear || v > 0); }

std::string count_label(double n) {
  char buf[32];
  if (n >= 1 << 20 && std::fmod(n, 1 << 20) == 0)
    std::snprintf(buf, sizeof buf, "%.0fM", n / (1 << 20));
  else if (n >= 1024 && std::fmod(n, 1024) == 0)
    std::snprintf(buf, sizeof buf, "%.0fK", n / 1024);
  else
    std::snprintf(buf, sizeof buf, "%g", n);
  return buf;
}

struct AxisPair {
  Axis x, y;
};

void label_axis(PLINT axis, PLFLT value, char* label, PLINT length, PLPointer data) {
  const auto* axes = static_cast<const AxisPair*>(data);
  const Axis a = axis == PL_X_AXIS ? axes->x : axes->y;
  const double v = std::pow(10.0, value);
  if (a == Axis::Pow2)
    std::snprintf(label, length, "%s", count_label(std::round(v)).c_str());
  else
    std::snprintf(label, length, "%g", v);
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
  void pad(double frac) {
    if (hi <= lo) {
      const double d = lo != 0 ? std::abs(lo) * 0.05 : 0.5;
      lo -= d, hi += d;
    } else {
      const double d = (hi - lo) * frac;
      lo -= d, hi += d;
    }
  }
};

std::string options(Axis a, const char* base) {
  std::string o = base;
  if (a == Axis::Log10) o += "lo";
  if (a == Axis::Pow2) o += "o";
  return o;
}

// Major tick spacing of a power-of-two axis: a power-of-two multiple, at most ~12 ticks.
double pow2_tick(const Range& r) {
  const double octave = std::log10(2.0);
  double k = 1;
  while ((r.hi - r.lo) / (octave * k) > 12) k *= 2;
  return octave * k;
}

PLINT legend_position(Corner c) {
  const PLINT v =
      c == Corner::TopRight || c == Corner::TopLeft ? PL_POSITION_TOP : PL_POSITION_BOTTOM;
  const PLINT h =
      c == Corner::TopRight || c == Corner::BottomRight ? PL_POSITION_RIGHT : PL_POSITION_LEFT;
  return v | h | PL_POSITION_INSIDE;
}

void draw_line_panel(plstream& pls, const LinePanel& p) {
  Range xr, yr;
  int points = 0;
  for (const auto& s : p.series) {
    if (s.x.size() != s.y.size())
      throw PlotError("plot: series \"" + s.label + "\" has " + std::to_string(s.x.size()) +
                      " x values but " + std::to_string(s.y.size()) + " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(p.xaxis, s.x[i]) || !usable(p.yaxis, s.y[i])) continue;
      xr.add(transform(p.xaxis, s.x[i]));
      yr.add(transform(p.yaxis, s.y[i]));
      ++points;
    }
  }
  if (points == 0) throw PlotError("plot: panel \"" + p.title + "\" has no points to draw");
  xr.pad(p.xaxis == Axis::Linear ? 0.02 : 0.05);
  yr.pad(0.06);

  pls.adv(0);
  pls.vpor(0.1, 0.96, 0.15, 0.88);
  pls.wind(xr.lo, xr.hi, yr.lo, yr.hi);
  static AxisPair axes;  // read by the label callback while the box is drawn
  axes = {p.xaxis, p.yaxis};
  pls.slabelfunc(label_axis, &axes);
  const double xtick = p.xaxis == Axis::Pow2 ? pow2_tick(xr) : 0;
  const int xsub = p.xaxis == Axis::Pow2 ? 1 : 0;
  pls.col0(2);
  pls.width(0.5);
  pls.box(options(p.xaxis, "g").c_str(), xtick, xsub, options(p.yaxis, "g").c_str(), 0, 0);
  pls.col0(1);
  pls.width(1);
  pls.box(options(p.xaxis, "bcnst").c_str(), xtick, xsub, options(p.yaxis, "bcnstv").c_str(), 0, 0);
  pls.lab(p.xlabel.c_str(), p.ylabel.c_str(), p.title.c_str());

  std::vector<PLINT> opt, line_colors, line_styles, symbol_colors, symbol_numbers, text_colors;
  std::vector<PLFLT> line_widths, symbol_scales;
  std::vector<const char*> texts, symbols;
  for (const auto& s : p.series) {
    const int col = color_index(s.color);
    const PLINT sty = s.style == Style::Solid ? 1 : s.style == Style::Dashed ? 3 : 2;
    const PLINT code = s.marker == Marker::Circle   ? 4
                       : s.marker == Marker::Square ? 6
                       : s.marker == Marker::Cross  ? 5
                                                    : 0;
    std::vector<PLFLT> xs, ys;
    const auto flush = [&] {
      if (s.line && xs.size() >= 2) {
        pls.col0(col);
        pls.lsty(sty);
        pls.width(s.color == kGrey ? 1.0 : 1.6);
        pls.line(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
      }
      if (code && !xs.empty()) {
        pls.col0(col);
        pls.lsty(1);
        pls.width(1.2);
        pls.poin(static_cast<PLINT>(xs.size()), xs.data(), ys.data(), code);
      }
      xs.clear(), ys.clear();
    };
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(p.xaxis, s.x[i]) || !usable(p.yaxis, s.y[i])) {
        flush();
        continue;
      }
      xs.push_back(transform(p.xaxis, s.x[i]));
      ys.push_back(transform(p.yaxis, s.y[i]));
    }
    flush();
    if (s.label.empty()) continue;
    opt.push_back((s.line ? PL_LEGEND_LINE : 0) | (code ? PL_LEGEND_SYMBOL : 0));
    line_colors.push_back(col);
    line_styles.push_back(sty);
    line_widths.push_back(1.6);
    symbol_colors.push_back(col);
    symbol_numbers.push_back(code ? 1 : 0);
    symbol_scales.push_back(1.0);
    symbols.push_back(code == 4 ? "#(840)" : code == 6 ? "#(841)" : code == 5 ? "#(842)" : "");
    text_colors.push_back(1);
    texts.push_back(s.label.c_str());
  }
  pls.lsty(1);
  pls.width(1);
  pls.col0(1);
  pls.schr(0, 0.75);
  for (const auto& n : p.notes)
    if (usable(p.xaxis, n.x) && usable(p.yaxis, n.y))
      pls.ptex(transform(p.xaxis, n.x), transform(p.yaxis, n.y), 1, 0, 0.5, n.text.c_str());
  if (!texts.empty()) {
    PLFLT w = 0, h = 0;
    pls.legend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, legend_position(p.legend),
               0.02, 0.02, 0.08, 0, 1, 1, 0, 0, static_cast<PLINT>(texts.size()), opt.data(), 1.0,
               0.8, 2.0, 0.0, text_colors.data(), texts.data(), nullptr, nullptr, nullptr, nullptr,
               line_colors.data(), line_styles.data(), line_widths.data(), symbol_colors.data(),
               symbol_scales.data(), symbol_numbers.data(), symbols.data());
  }
  pls.schr(0, 0.9);
}

void set_viridis(plstream& pls) {
  const PLFLT pos[] = {0.0, 0.25, 0.5, 0.75, 1.0};
  const PLFLT r[] = {68 / 255., 59 / 255., 33 / 255., 94 / 255., 253 / 255.};
  const PLFLT g[] = {1 / 255., 82 / 255., 145 / 255., 201 / 255., 231 / 255.};
  const PLFLT b[] = {84 / 255., 139 / 255., 140 / 255., 98 / 255., 37 / 255.};
  pls.scmap1l(true, 5, pos, r, g, b, nullptr);
}

void draw_heatmap_panel(plstream& pls, const HeatmapPanel& p) {
  const PLINT nx = static_cast<PLINT>(p.columns.size()), ny = static_cast<PLINT>(p.rows.size());
  if (nx == 0 || ny == 0) throw PlotError("plot: heatmap \"" + p.title + "\" has no cells");
  if (static_cast<PLINT>(p.values.size()) != ny)
    throw PlotError("plot: heatmap \"" + p.title + "\" has " + std::to_string(p.values.size()) +
                    " value rows for " + std::to_string(ny) + " row labels");
  for (const auto& row : p.values)
    if (static_cast<PLINT>(row.size()) != nx)
      throw PlotError("plot: heatmap \"" + p.title + "\" has a row of " +
                      std::to_string(row.size()) + " values for " + std::to_string(nx) +
                      " column labels");
  if (!(p.vmax > p.vmin)) throw PlotError("plot: heatmap \"" + p.title + "\": vmax <= vmin");

  pls.adv(0);
  pls.vpor(0.16, 0.95, 0.16, 0.88);
  pls.wind(0, nx, 0, ny);
  set_viridis(pls);
  pls.schr(0, 0.8);
  for (PLINT i = 0; i < nx; ++i) {
    for (PLINT j = 0; j < ny; ++j) {  // each cell a filled rectangle in the colour of its value
      const double v = p.values[j][i];
      const PLFLT fx[] = {PLFLT(i), PLFLT(i + 1), PLFLT(i + 1), PLFLT(i)};
      const PLFLT fy[] = {PLFLT(j), PLFLT(j), PLFLT(j + 1), PLFLT(j + 1)};
      char text[32];
      if (std::isfinite(v)) {
        const double t = (std::clamp(v, p.vmin, p.vmax) - p.vmin) / (p.vmax - p.vmin);
        pls.col1(t);
        pls.fill(4, fx, fy);
        std::snprintf(text, sizeof text, "%.*f", p.digits, v);
        pls.col0(t < 0.6 ? 0 : 1);  // white on the dark end of the map, black on the light
      } else {
        pls.col0(2);
        pls.fill(4, fx, fy);
        std::snprintf(text, sizeof text, "-");
        pls.col0(1);
      }
      pls.ptex(i + 0.5, j + 0.42, 1, 0, 0.5, text);
    }
  }
  pls.col0(1);
  pls.box("bc", 0, 0, "bc", 0, 0);
  for (PLINT i = 0; i < nx; ++i) pls.mtex("b", 1.4, (i + 0.5) / nx, 0.5, p.columns[i].c_str());
  for (PLINT j = 0; j < ny; ++j) pls.mtex("lv", 0.8, (j + 0.5) / ny, 1.0, p.rows[j].c_str());
  pls.schr(0, 0.9);
  pls.mtex("b", 3.0, 0.5, 0.5, p.xlabel.c_str());
  pls.mtex("l", 5.0, 0.5, 0.5, p.ylabel.c_str());
  pls.mtex("t", 1.5, 0.5, 0.5, p.title.c_str());
}

}  // namespace

void write_lines(const std::string& path, const std::vector<LinePanel>& panels, int width,
                 int height) {
  if (panels.empty()) throw PlotError("plot: " + path + ": no panels to draw");
  render(path, width, height, static_cast<int>(panels.size()), [&](plstream& pls) {
    for (const auto& p : panels) draw_line_panel(pls, p);
  });
}

void write_heatmaps(const std::string& path, const std::vector<HeatmapPanel>& panels, int width,
                    int height) {
  if (panels.empty()) throw PlotError("plot: " + path + ": no panels to draw");
  render(path, width, height, static_cast<int>(panels.size()), [&](plstream& pls) {
    for (const auto& p : panels) draw_heatmap_panel(pls, p);
  });
}

}  // namespace lighthouse::plot
