#pragma once
// What the agent benchmarks share on their command line: number flags that
// must be positive, and a main() that turns bad usage into exit 2 and a
// benchmark that could not run into exit 1, each with one line on stderr.

#include <functional>
#include <string>

#include "util/args.hpp"

namespace kubeaccel::bench {

// --flag as an integer in [1, 1000000]; `fallback` when absent. Throws UsageError.
int positiveInt(const Args& args, const std::string& flag, int fallback);
// --flag as a number > 0; `fallback` when absent. Throws UsageError.
double positiveNumber(const Args& args, const std::string& flag, double fallback);

// Calls parse() and, when it returns true, run(): bad usage (an exception
// from parse()) exits 2, any exception from run() exits 1, with
// "<name>: <reason>" on stderr. parse() returns false when it was all there
// was to do (--help): exit 0.
int benchMain(const char* name, const std::function<bool()>& parse, const std::function<int()>& run);

}  // namespace kubeaccel::bench
