#include "metrics/metrics_registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <mutex>
#include <stdexcept>

namespace kubeaccel::metrics {

static_assert(std::atomic<double>::is_always_lock_free, "metrics need lock-free atomic<double>");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "metrics need lock-free atomic<uint64_t>");

// ---- values ---------------------------------------------------------------------------------------

void Counter::inc(double v) {
  if (!(v >= 0)) throw std::invalid_argument("metrics: a counter can only go up (inc by " + formatValue(v) + ")");
  value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  // First bound >= v; NaN compares false everywhere, so send it to +Inf explicitly.
  std::size_t i = std::isnan(v) ? bounds_.size()
                                : static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                                           bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  s.buckets.resize(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.buckets[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::uint64_t Histogram::count() const {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) n += counts_[i].load(std::memory_order_relaxed);
  return n;
}

// ---- names and text -------------------------------------------------------------------------------

namespace {

bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

std::string escapeHelp(const std::string& help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

const char* typeName(int t) {
  switch (t) {
    case 0: return "counter";
    case 1: return "gauge";
    default: return "histogram";
  }
}

// "{a="x",b="y"}" from names and values, with an optional extra label (le) at the end.
void appendLabels(std::string& out, const std::vector<std::string>& names, const std::vector<std::string>& values,
                  const char* extraName = nullptr, const std::string& extraValue = {}) {
  if (names.empty() && extraName == nullptr) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    out += escapeLabelValue(values[i]);
    out += '"';
  }
  if (extraName != nullptr) {
    if (!names.empty()) out += ',';
    out += extraName;
    out += "=\"";
    out += escapeLabelValue(extraValue);
    out += '"';
  }
  out += '}';
}

std::vector<double> checkedBounds(const std::string& name, std::vector<double> bounds) {
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]))
      throw std::invalid_argument("metrics: histogram " + name + ": bucket bounds must be finite");
    if (i > 0 && !(bounds[i] > bounds[i - 1]))
      throw std::invalid_argument("metrics: histogram " + name + ": bucket bounds must be strictly increasing");
  }
  return bounds;
}

}  // namespace

bool validMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(isAlpha(c) || c == '_' || c == ':' || (i > 0 && isDigit(c)))) return false;
  }
  return true;
}

bool validLabelName(const std::string& name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(isAlpha(c) || c == '_' || (i > 0 && isDigit(c)))) return false;
  }
  return true;
}

std::string escapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string formatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Whole numbers as integers ("400000", not "4e+05"); everything else shortest round-trip.
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
    return std::string(buf, r.ptr);
  }
  // Like Go's strconv 'g' (what Prometheus' own clients print): plain decimals down to 1e-4
  // ("0.0001", "0.00025"), exponents below that ("5e-05").
  char buf[400];
  double mag = std::fabs(v);
  auto r = mag >= 1e-4 && mag < 1e15 ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                                     : std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::vector<double> latencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
}

std::vector<double> batchSizeBuckets() { return {1, 2, 4, 8, 16, 32, 64}; }

// ---- registry -------------------------------------------------------------------------------------

struct Registry::Child {
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

struct Registry::Family {
  std::string name;
  std::string help;
  Type type;
  std::vector<std::string> labelNames;
  std::vector<double> bounds;                                          // histograms only
  std::map<std::vector<std::string>, std::unique_ptr<Child>> children;  // by label values
};

Registry::Registry() = default;
Registry::~Registry() = default;

namespace {

std::vector<std::string> sampleNamesOf(const std::string& name, bool histogram) {
  if (!histogram) return {name};
  return {name, name + "_bucket", name + "_sum", name + "_count"};
}

}  // namespace

Registry::Child& Registry::child(const std::string& name, const std::string& help, Type type, const Labels& labels,
                                 const std::vector<double>* bounds) {
  std::vector<std::string> values;
  values.reserve(labels.size());
  for (const auto& [k, v] : labels) values.push_back(v);

  // The declaration must match the existing family; throws std::logic_error otherwise.
  auto checkSame = [&](const Family& f) {
    auto conflict = [&](const std::string& what) {
      throw std::logic_error("metrics: " + name + " re-declared with a different " + what);
    };
    if (f.type != type) conflict(std::string("type (") + typeName(static_cast<int>(type)) + ", was " +
                                 typeName(static_cast<int>(f.type)) + ")");
    if (f.help != help) conflict("help text");
    bool sameLabels = f.labelNames.size() == labels.size();
    for (std::size_t i = 0; sameLabels && i < labels.size(); ++i) sameLabels = f.labelNames[i] == labels[i].first;
    if (!sameLabels) conflict("set or order of label names");
    if (bounds != nullptr && checkedBounds(name, *bounds) != f.bounds) conflict("bucket bounds");
  };

  {
    std::shared_lock lock(mu_);
    auto it = families_.find(name);
    if (it != families_.end()) {
      checkSame(*it->second);
      auto c = it->second->children.find(values);
      if (c != it->second->children.end()) return *c->second;
    }
  }

  std::unique_lock lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) {
    if (!validMetricName(name)) throw std::invalid_argument("metrics: invalid metric name '" + name + "'");
    auto f = std::make_unique<Family>();
    f->name = name;
    f->help = help;
    f->type = type;
    for (const auto& [k, v] : labels) {
      if (!validLabelName(k) || k.rfind("__", 0) == 0)
        throw std::invalid_argument("metrics: " + name + ": invalid label name '" + k + "'");
      if (type == Type::Histogram && k == "le")
        throw std::invalid_argument("metrics: " + name + ": a histogram cannot have a label named 'le'");
      if (std::find(f->labelNames.begin(), f->labelNames.end(), k) != f->labelNames.end())
        throw std::invalid_argument("metrics: " + name + ": label '" + k + "' given twice");
      f->labelNames.push_back(k);
    }
    if (bounds != nullptr) f->bounds = checkedBounds(name, *bounds);
    auto samples = sampleNamesOf(name, type == Type::Histogram);
    for (const auto& s : samples) {
      auto clash = sampleNames_.find(s);
      if (clash != sampleNames_.end())
        throw std::logic_error("metrics: " + name + " clashes with " + clash->second + " (both write " + s + ")");
    }
    for (const auto& s : samples) sampleNames_.emplace(s, name);
    it = families_.emplace(name, std::move(f)).first;
  } else {
    checkSame(*it->second);
  }

  Family& f = *it->second;
  auto c = f.children.find(values);
  if (c != f.children.end()) return *c->second;
  auto ch = std::make_unique<Child>();
  switch (type) {
    case Type::Counter: ch->counter = std::make_unique<Counter>(); break;
    case Type::Gauge: ch->gauge = std::make_unique<Gauge>(); break;
    case Type::Histogram: ch->histogram = std::make_unique<Histogram>(f.bounds); break;
  }
  return *f.children.emplace(std::move(values), std::move(ch)).first->second;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  return *child(name, help, Type::Counter, labels, nullptr).counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  return *child(name, help, Type::Gauge, labels, nullptr).gauge;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                               const Labels& labels) {
  return *child(name, help, Type::Histogram, labels, &bounds).histogram;
}

std::string Registry::exposition() const {
  std::string out;
  std::shared_lock lock(mu_);
  for (const auto& [name, fp] : families_) {
    const Family& f = *fp;
    out += "# HELP ";
    out += name;
    out += ' ';
    out += escapeHelp(f.help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += typeName(static_cast<int>(f.type));
    out += '\n';
    for (const auto& [values, ch] : f.children) {
      if (f.type == Type::Histogram) {
        auto s = ch->histogram->snapshot();
        for (std::size_t i = 0; i < s.buckets.size(); ++i) {
          out += name;
          out += "_bucket";
          appendLabels(out, f.labelNames, values, "le", i < s.bounds.size() ? formatValue(s.bounds[i]) : "+Inf");
          out += ' ';
          out += std::to_string(s.buckets[i]);
          out += '\n';
        }
        out += name;
        out += "_sum";
        appendLabels(out, f.labelNames, values);
        out += ' ';
        out += formatValue(s.sum);
        out += '\n';
        out += name;
        out += "_count";
        appendLabels(out, f.labelNames, values);
        out += ' ';
        out += std::to_string(s.count);
        out += '\n';
      } else {
        out += name;
        appendLabels(out, f.labelNames, values);
        out += ' ';
        out += formatValue(f.type == Type::Counter ? ch->counter->value() : ch->gauge->value());
        out += '\n';
      }
    }
  }
  return out;
}

}  // namespace kubeaccel::metrics
