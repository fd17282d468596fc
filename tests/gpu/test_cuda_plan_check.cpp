// User plans are validated identically on CUDA and CPU: each malformed plan raises on both
// devices with the same message, and a valid plan passes on both.
#include <ATen/ATen.h>

#include <functional>
#include <string>

#include "gpu/gpu_common.h"
#include "support/common.h"

namespace lighthouse::test {
namespace {

const Shape kPlanShape{1, 256, 4, 2, 16, 3, 2, 32, 16};  // P = 448, S = 128

struct BadPlan {
  std::string name;
  std::function<void(Plan&)> edit;
  std::string message;
};

// The error message of attention with a plan edited by `edit` on `device` ("" if none).
std::string error_on(const at::Device& device, const std::function<void(Plan&)>& edit) {
  const Inputs host = random_inputs(kPlanShape, at::kFloat, 7);
  const Inputs in{host.q.to(device), host.k.to(device), host.v.to(device)};
  Plan pl = plan(in.q, in.k, kPlanShape.cfg());
  edit(pl);
  try {
    attention(in.q, in.k, in.v, pl, kPlanShape.cfg());
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

TEST(CudaPlanCheck, MalformedPlansRaiseAsOnCpu) {
  SKIP_WITHOUT_CUDA();
  const std::vector<BadPlan> cases = {
      {"slots_out_of_range", [](Plan& p) { p.slots = p.slots + 1000; }, "slots values must lie"},
      {"slots_negative", [](Plan& p) { p.slots = p.slots - 1000; }, "slots values must lie"},
      {"inverse_out_of_range", [](Plan& p) { p.inverse = p.inverse + 1000; },
       "inverse values must lie"},
      {"inconsistent", [](Plan& p) { p.slots = p.slots.flip(2); }, "inverse must be the inverse"},
      {"duplicates", [](Plan& p) { p.slots = at::zeros_like(p.slots); },
       "inverse must be the inverse"},
      {"extra_inverse_entry",
       [](Plan& p) {
         // One more pyramid index claims slot 0: slots still map back, but the count is off.
         const at::Tensor free_idx = p.inverse.eq(-1).nonzero()[0];  // [3]
         p.inverse.index_put_({free_idx[0], free_idx[1], free_idx[2]}, 0);
       },
       "inverse must be the inverse"},
  };
  for (const BadPlan& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string cpu = error_on(at::kCPU, c.edit);
    const std::string cuda = error_on(at::Device(at::kCUDA), c.edit);
    EXPECT_NE(cpu.find(c.message), std::string::npos) << cpu;
    EXPECT_EQ(cuda, cpu);
  }
  EXPECT_EQ(error_on(at::Device(at::kCUDA), [](Plan&) {}), "");
}

}  // namespace
}  // namespace lighthouse::test
