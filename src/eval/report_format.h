// Number formatting shared by the comparison reports (compare_report.cpp, compare.cpp,
// paired.cpp): JSON numbers that may be missing, and printf-style text that says "n/a" for them.
#pragma once

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace lighthouse::eval::report {

// v, or null when it is not finite.
inline nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}
// A JSON number, or NaN for anything else (null included).
inline double number(const nlohmann::json& v) {
  return v.is_number() ? v.get<double>() : std::nan("");
}
// printf of one number; "n/a" when it is not finite.
inline std::string fmt(const char* f, double v) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace lighthouse::eval::report
