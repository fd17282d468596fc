// Typed handle of a registered `lighthouse::` op, looked up once per call site.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>

namespace lighthouse::ops {

template <typename Sig>
c10::TypedOperatorHandle<Sig> op_handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

}  // namespace lighthouse::ops
