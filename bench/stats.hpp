#pragma once
// Order statistics of a sample, as the benchmarks report them.

#include <cstddef>
#include <string>
#include <vector>

namespace kubeaccel::bench {

struct Distribution {
  size_t n = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};

// Nearest-rank percentiles; all zero for an empty sample.
Distribution distribution(std::vector<double> sample);

// "min 1.2 p50 ... (n=200)" with `digits` decimals and the unit after each value.
std::string describe(const Distribution& d, const std::string& unit, int digits = 2);

// Fixed-point text of a number.
std::string fixed(double v, int digits);

}  // namespace kubeaccel::bench
