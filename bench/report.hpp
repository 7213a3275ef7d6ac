#pragma once
// What plugin_bench hands back: per-sample CSV files and the summary rows
// (figure, value, unit, target, met) printed as a table and written to
// summary.csv. A missed target is a finding, never an error.

#include <fstream>
#include <string>
#include <vector>

namespace kubeaccel::bench {

// A CSV file with a header line; fields are written as given (no quoting
// needed: the benchmarks write numbers and simple names).
class CsvFile {
 public:
  CsvFile(const std::string& path, const std::vector<std::string>& header);
  CsvFile& operator<<(const std::vector<std::string>& row);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

class Report {
 public:
  explicit Report(std::string title = "plugin_bench") : title_(std::move(title)) {}

  enum class Met { Yes, No, NotApplicable };
  struct Row {
    std::string figure, value, unit, target;
    Met met = Met::NotApplicable;
  };

  // A figure with no target (context, or a reference number).
  void info(const std::string& figure, const std::string& value, const std::string& unit);
  // A figure with a target; `met` is whether it held.
  void target(const std::string& figure, const std::string& value, const std::string& unit,
              const std::string& target, bool met);
  void finding(const std::string& text) { findings_.push_back(text); }

  void writeCsv(const std::string& path) const;
  // Puts these rows, each figure prefixed, into an existing summary CSV in
  // place of the rows an earlier run wrote there with the same prefix.
  void mergeInto(const std::string& summaryCsv, const std::string& prefix) const;
  void print() const;

 private:
  std::string title_;
  std::vector<Row> rows_;
  std::vector<std::string> findings_;
};

}  // namespace kubeaccel::bench
