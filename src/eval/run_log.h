// A run's metrics.jsonl read back for reports and plots: training steps (loss, step time,
// attention mode), validation records (one per mode) and the attention switch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lighthouse::eval {

struct StepRecord {
  int64_t step = 0, tokens = 0;
  double loss = 0, step_time_s = 0;
  double wall_s = 0;  // cumulative step time through this step
  std::string mode;   // dense | lighthouse
};

struct ValRecord {
  int64_t step = 0, tokens = 0;
  double loss = 0;
  std::string mode;
};

struct RunLog {
  std::string dir, name;          // name: the run directory's last component
  std::vector<StepRecord> steps;  // in step order
  std::vector<ValRecord> vals;
  int64_t switch_step = -1;  // steps completed when attention switched to dense, -1 if never

  // Cumulative step time through `step` (0 for step 0); the last value beyond the log.
  double wall_at(int64_t step) const;
  double wall_clock_s() const { return steps.empty() ? 0 : steps.back().wall_s; }
  // The dense-mode validation loss of the last validation, or NaN.
  double last_dense_val() const;
};

// Reads <run_dir>/metrics.jsonl. Throws std::runtime_error naming the file when it is
// missing or holds no step record, and the file and line when a record has a field of the
// wrong type (lines that are not JSON objects are skipped: a line cut short by a kill). Records of the earlier val format (val_loss, attention)
// are read as {loss, mode}.
RunLog read_run_log(const std::string& run_dir);

}  // namespace lighthouse::eval
