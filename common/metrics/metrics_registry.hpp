#pragma once
// Prometheus metrics without a third-party library: counters, gauges and histograms kept
// in a Registry and rendered in the text exposition format 0.0.4.
//
// Usage:
//   metrics::Registry reg;
//   auto& allocs = reg.counter("kubeaccel_allocations_total", "Allocate calls answered.",
//                              {{"resource", "kubeaccel.io/coral-usb"}});
//   allocs.inc();                       // lock-free; keep the reference, it never dangles
//   reg.exposition();                   // "# HELP kubeaccel_allocations_total ...\n# TYPE ...\n..."
//
// Rules:
// - Metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and do not
//   start with "__" (reserved by Prometheus); histograms may not use the label "le". Bad names
//   throw std::invalid_argument.
// - Nothing is appended to names: by Prometheus convention a counter's name should end in
//   "_total" (promtool warns otherwise); that is the caller's job.
// - A family (name) is declared once with its help, type, label names (in order) and, for
//   histograms, its bucket bounds. Asking again with identical help/type/label names/bounds
//   returns the same family; anything else throws std::logic_error. So does a name whose
//   samples would clash with another family's (a gauge "x_count" next to a histogram "x").
// - Children are selected by label values, given with the names in the family's order.
//   Returned references stay valid for the registry's lifetime.
// - Thread safety: every member may be called from any thread. inc/set/add/observe are
//   lock-free atomics; lookups take a shared lock, exposition() a shared lock too, so
//   updates never wait for a scrape.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace kubeaccel::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;  // in declaration order

class Counter {
 public:
  // Adds v (default 1). Throws std::invalid_argument when v is negative or NaN: counters only go up.
  void inc(double v = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // bounds: finite, strictly increasing upper bounds (a trailing +Inf is implied); checked by Registry.
  explicit Histogram(std::vector<double> bounds);

  // Counts v in the first bucket whose bound is >= v (NaN and values above every bound go to +Inf).
  void observe(double v);

  struct Snapshot {
    std::vector<double> bounds;          // without +Inf
    std::vector<std::uint64_t> buckets;  // cumulative, bounds.size() + 1 entries; the last one is +Inf
    double sum = 0;
    std::uint64_t count = 0;             // always equals buckets.back()
  };
  // A read while observe() runs elsewhere: every bucket count is exact as of its read, _count is
  // derived from the buckets (so +Inf == _count always), _sum may lag by the observations in flight.
  Snapshot snapshot() const;
  std::uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative; +1 for +Inf
  std::atomic<double> sum_{0};
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  // bounds: finite and strictly increasing (a trailing +Inf is accepted and dropped);
  // std::invalid_argument otherwise.
  Histogram& histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                       const Labels& labels = {});

  // Text format 0.0.4, families sorted by name, children sorted by label values:
  //   # HELP name help          (help escapes \\ and \n)
  //   # TYPE name counter|gauge|histogram
  //   name{a="v",b="w"} 1       (label values escape \\, \" and \n)
  // Histograms: name_bucket{...,le="0.005"} (cumulative, ending with le="+Inf"), name_sum, name_count.
  // Values: shortest round-trip decimal, "+Inf", "-Inf", "NaN". Empty registry: "".
  std::string exposition() const;

 private:
  enum class Type { Counter, Gauge, Histogram };
  struct Child;
  struct Family;
  Child& child(const std::string& name, const std::string& help, Type type, const Labels& labels,
               const std::vector<double>* bounds);

  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<Family>> families_;  // by name
  std::map<std::string, std::string> sampleNames_;           // sample name -> owning family
};

// Buckets for latencies in seconds: 50 us .. 10 s (1-2.5-5 steps).
std::vector<double> latencyBuckets();
// Buckets for batch sizes 1..64 (powers of two).
std::vector<double> batchSizeBuckets();

// Exposed for tests and other writers of the format.
bool validMetricName(const std::string& name);
bool validLabelName(const std::string& name);
std::string escapeLabelValue(const std::string& value);
std::string formatValue(double v);

}  // namespace kubeaccel::metrics
