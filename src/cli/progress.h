// The progress indicator of every long command (train, bench, bench train, the CUDA sweep): on
// a terminal one line redrawn in place on stderr ("\r...\033[K"); anywhere else (a file, a
// pipe) plain lines without control characters, one every `interval` seconds and one at the
// end. Both show done/total, the rate, the elapsed time and the ETA.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace lighthouse::cli {

class Progress {
 public:
  // Plain lines every 10 s when stderr is not a terminal.
  static constexpr double kPlainInterval = 10.0;

  Progress(std::string label, int64_t total, std::string unit = "it")
      : Progress(std::move(label), total, std::move(unit), stderr, isatty(STDERR_FILENO) == 1,
                 kPlainInterval) {}
  // Explicit stream and mode (tests); `interval_s` spaces the plain lines.
  Progress(std::string label, int64_t total, std::string unit, std::FILE* out, bool terminal,
           double interval_s)
      : label_(std::move(label)),
        unit_(std::move(unit)),
        total_(total),
        out_(out),
        terminal_(terminal),
        interval_(interval_s),
        start_(std::chrono::steady_clock::now()) {}

  // Reports `done` of `total` units finished; `extra` is appended (e.g. "loss 2.31").
  void update(int64_t done, const std::string& extra = "") {
    const double el = seconds();
    const bool last = done >= total_;
    if (finished_) return;
    if (terminal_) {
      if (!last && drawn_ && el - last_ < 0.1) return;  // redraw at most 10 times a second
      std::fprintf(out_, "\r%s\033[K%s", text(done, el, extra).c_str(), last ? "\n" : "");
      drawn_ = !last;
    } else {
      if (!last && (done <= 0 || el - last_ < interval_)) return;
      std::fprintf(out_, "%s\n", text(done, el, extra).c_str());
    }
    finished_ = last;
    last_ = el;
    std::fflush(out_);
  }

  // Erases the line being redrawn (terminals only), so that a log line can be printed.
  void clear() {
    if (!terminal_ || !drawn_) return;
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
    drawn_ = false;
  }

  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  // "1.23k", "45.6M": the counts and rates of the line.
  static std::string count(double x) {
    char buf[32];
    const char* suffix[] = {"", "k", "M", "G", "T"};
    int i = 0;
    while (x >= 1000 && i < 4) x /= 1000, ++i;
    std::snprintf(buf, sizeof(buf), i == 0 && x == static_cast<int64_t>(x) ? "%.0f%s" : "%.3g%s", x,
                  suffix[i]);
    return buf;
  }
  // "42s", "3m07s", "2h05m": elapsed times and ETAs.
  static std::string duration(double s) {
    char buf[32];
    const int64_t t = static_cast<int64_t>(s + 0.5);
    if (t < 60)
      std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(t));
    else if (t < 3600)
      std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(t / 60),
                    static_cast<long long>(t % 60));
    else
      std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(t / 3600),
                    static_cast<long long>(t / 60 % 60));
    return buf;
  }

 private:
  std::string text(int64_t done, double el, const std::string& extra) const {
    const double rate = el > 0 ? static_cast<double>(done) / el : 0.0;
    std::string s = "[" + label_ + "] " + count(double(done)) + "/" + count(double(total_)) + " " +
                    unit_ + "  " + count(rate) + " " + unit_ + "/s  elapsed " + duration(el);
    if (done < total_)
      s += "  ETA " + (rate > 0 ? duration(double(total_ - done) / rate) : std::string("?"));
    return extra.empty() ? s : s + "  " + extra;
  }

  std::string label_, unit_;
  int64_t total_;
  std::FILE* out_;
  bool terminal_;
  double interval_;
  std::chrono::steady_clock::time_point start_;
  double last_ = 0;        // seconds() of the last line written
  bool drawn_ = false;     // a redrawn line is on screen (terminal)
  bool finished_ = false;  // the final line (done >= total) is written
};

}  // namespace lighthouse::cli
