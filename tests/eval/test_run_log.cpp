// A run's metrics.jsonl read back (eval/run_log.h): a record with a field of the wrong type is
// an error naming the file and the line, through `lighthouse plot` as well; a line cut short
// (a killed writer) is skipped.
#include <gtest/gtest.h>

#include "eval/run_log.h"
#include "train/helpers.h"

namespace lighthouse::eval {
namespace {

using train::testing::run_cli;
using train::testing::scratch_dir;
using train::testing::write_file;

const char* kGood =
    R"({"type":"step","step":1,"loss":5.5,"step_time_s":0.5,"attention":"dense"})"
    "\n"
    R"({"type":"val","step":1,"mode":"dense","loss":5.4})"
    "\n";

TEST(RunLog, AFieldOfTheWrongTypeNamesTheFileAndLine) {
  const std::string dir = scratch_dir("run");
  write_file(dir + "/metrics.jsonl", std::string(kGood) + R"({"type":"step","step":2,"lo)");
  const RunLog log = read_run_log(dir);  // the cut-short last line is skipped
  ASSERT_EQ(log.steps.size(), 1u);
  EXPECT_EQ(log.vals.size(), 1u);

  write_file(dir + "/metrics.jsonl",
             std::string(kGood) + R"({"type":"step","step":2,"loss":"high"})" + "\n");
  std::string what;
  try {
    read_run_log(dir);
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  EXPECT_EQ(what.rfind(dir + "/metrics.jsonl:3: a field has the wrong type (", 0), 0u) << what;

  const auto r = run_cli(dir, {"plot", dir, "--out", dir + "/loss.png"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dir + "/metrics.jsonl:3: a field has the wrong type"), std::string::npos)
      << r.err;
  write_file(dir + "/metrics.jsonl", std::string(kGood) + R"({"type":7,"step":2})" + "\n");
  EXPECT_NE(run_cli(dir, {"plot", dir, "--out", dir + "/loss.png"})
                .err.find(dir + "/metrics.jsonl:3: a field has the wrong type"),
            std::string::npos);
}

}  // namespace
}  // namespace lighthouse::eval
