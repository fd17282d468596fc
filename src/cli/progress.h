// A one-line console progress indicator with rate and ETA, redrawn in place on stderr.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace lighthouse::cli {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "it")
      : label_(std::move(label)), unit_(std::move(unit)), total_(total),
        start_(std::chrono::steady_clock::now()) {}

  // Reports `done` of `total` units finished; `extra` is appended (e.g. "loss 2.31").
  void update(int64_t done, const std::string& extra = "") {
    const double el = seconds();
    const double rate = el > 0 ? done / el : 0.0;
    const double eta = rate > 0 ? (total_ - done) / rate : 0.0;
    std::fprintf(stderr, "\r[%s] %lld/%lld  %.2f %s/s  elapsed %.1fs  ETA %.1fs  %s\033[K",
                 label_.c_str(), static_cast<long long>(done), static_cast<long long>(total_),
                 rate, unit_.c_str(), el, eta, extra.c_str());
    if (done >= total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::string label_, unit_;
  int64_t total_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace lighthouse::cli
