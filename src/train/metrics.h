// metrics.jsonl of a run: one JSON object per line, each with a "type" (step, val, event) and
// the "step" it belongs to. Lines are flushed as written; reopening for a resume from step S
// first drops every record after S, so the file reads as if the run had never stopped.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace lighthouse::train {

class MetricsLog {
 public:
  // Opens `path` for appending after dropping records with step > keep_through_step (and any
  // unreadable partial line a crash left behind). An empty path writes nothing (the log of a
  // rank other than 0).
  MetricsLog(const std::string& path, int64_t keep_through_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const nlohmann::json& record);

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
};

}  // namespace lighthouse::train
