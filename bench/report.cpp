#include "report.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace kubeaccel::bench {
namespace {

std::string join(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) line += (i ? "," : "") + fields[i];
  return line;
}

const char* text(Report::Met m) {
  switch (m) {
    case Report::Met::Yes: return "yes";
    case Report::Met::No: return "NO";
    default: return "";
  }
}

}  // namespace

CsvFile::CsvFile(const std::string& path, const std::vector<std::string>& header) : path_(path), out_(path) {
  if (!out_) throw std::runtime_error("cannot write " + path);
  out_ << join(header) << "\n";
}

CsvFile& CsvFile::operator<<(const std::vector<std::string>& row) {
  out_ << join(row) << "\n";
  return *this;
}

void Report::info(const std::string& figure, const std::string& value, const std::string& unit) {
  rows_.push_back({figure, value, unit, "", Met::NotApplicable});
}

void Report::target(const std::string& figure, const std::string& value, const std::string& unit,
                    const std::string& target, bool met) {
  rows_.push_back({figure, value, unit, target, met ? Met::Yes : Met::No});
  if (!met) findings_.push_back("target missed: " + figure + " = " + value + " " + unit + " (target " + target + ")");
}

namespace {
std::vector<std::string> fields(const Report::Row& r, const std::string& prefix) {
  std::string met = r.met == Report::Met::Yes ? "yes" : r.met == Report::Met::No ? "no" : "";
  return {prefix + r.figure, r.value, r.unit, r.target, met};
}
}  // namespace

void Report::writeCsv(const std::string& path) const {
  CsvFile csv(path, {"figure", "value", "unit", "target", "met"});
  for (const auto& r : rows_) csv << fields(r, "");
}

void Report::mergeInto(const std::string& summaryCsv, const std::string& prefix) const {
  std::vector<std::string> kept;
  if (std::ifstream in(summaryCsv); in) {
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line))
      if (!line.empty() && line.rfind(prefix, 0) != 0) kept.push_back(line);
  }
  CsvFile csv(summaryCsv, {"figure", "value", "unit", "target", "met"});
  for (const auto& line : kept) csv << std::vector<std::string>{line};
  for (const auto& r : rows_) csv << fields(r, prefix);
}

void Report::print() const {
  size_t wf = 6, wv = 5, wu = 4, wt = 6;
  for (const auto& r : rows_) {
    wf = std::max(wf, r.figure.size());
    wv = std::max(wv, r.value.size());
    wu = std::max(wu, r.unit.size());
    wt = std::max(wt, r.target.size());
  }
  auto line = [&](const std::string& f, const std::string& v, const std::string& u, const std::string& t,
                  const std::string& m) {
    std::printf("  %-*s  %*s  %-*s  %-*s  %s\n", int(wf), f.c_str(), int(wv), v.c_str(), int(wu), u.c_str(), int(wt),
                t.c_str(), m.c_str());
  };
  std::printf("\n==== %s summary ====\n", title_.c_str());
  line("figure", "value", "unit", "target", "met");
  line(std::string(wf, '-'), std::string(wv, '-'), std::string(wu, '-'), std::string(wt, '-'), "---");
  for (const auto& r : rows_) line(r.figure, r.value, r.unit, r.target, text(r.met));
  if (findings_.empty()) {
    std::printf("\nfindings: none; every target met\n");
  } else {
    std::printf("\nfindings:\n");
    for (const auto& f : findings_) std::printf("  - %s\n", f.c_str());
  }
  std::fflush(stdout);
}

}  // namespace kubeaccel::bench
