// The JSON Lines metrics writer with resume truncation (metrics.h).
#include "train/metrics.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace lighthouse::train {

MetricsLog::MetricsLog(const std::string& path, int64_t keep_through_step) {
  if (path.empty()) return;
  std::string kept;
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
          j["step"].get<int64_t>() <= keep_through_step)
        kept += line + "\n";
    }
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << kept;
    if (!out) throw std::runtime_error("metrics: cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("metrics: cannot replace " + path);
  path_ = path;
  f_ = std::fopen(path.c_str(), "a");
  if (!f_) throw std::runtime_error("metrics: cannot open " + path);
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const nlohmann::json& record) {
  if (!f_) return;
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    throw std::runtime_error("metrics: writing " + path_ + " failed: " + std::strerror(errno));
}

}  // namespace lighthouse::train
