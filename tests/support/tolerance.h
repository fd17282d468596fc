// The one tolerance table of the tests: rel_err (max |a - b| / max |b|, support/common.h)
// allowed for a result computed in `dtype` by a fast path (CUDA kernels, ring attention)
// against the float64 CPU reference: a few roundings of the dtype.
#pragma once

#include <c10/core/ScalarType.h>

namespace lighthouse::test {

inline double tolerance(at::ScalarType dtype) {
  switch (dtype) {
    case at::kBFloat16: return 3e-2;
    case at::kHalf: return 4e-3;
    default: return 2e-4;
  }
}

}  // namespace lighthouse::test
