// The plotting path of a build without PLplot (LIGHTHOUSE_PLOTS=OFF or not found): every plot
// is an error naming what to install.
#include "plot/plot.h"

namespace lighthouse::plot {
namespace {

[[noreturn]] void unavailable(const std::string& path) {
  throw PlotError("plot: " + path +
                  ": this lighthouse was built without PLplot; install libplplot-dev and "
                  "plplot-driver-cairo (scripts/setup.sh) and rebuild");
}

}  // namespace

void write_lines(const std::string& path, const std::vector<LinePanel>&, int, int) {
  unavailable(path);
}

void write_heatmaps(const std::string& path, const std::vector<HeatmapPanel>&, int, int) {
  unavailable(path);
}

}  // namespace lighthouse::plot
