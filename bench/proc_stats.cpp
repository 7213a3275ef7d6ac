#include "proc_stats.hpp"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

namespace kubeaccel::bench {
namespace {

std::vector<std::string> numericEntries(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.emplace_back(e->d_name);
    ::closedir(d);
  }
  return out;
}

std::string readFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "Key:   123 kB" lines of a status file.
long field(const std::string& status, const std::string& key) {
  auto pos = status.find("\n" + key + ":");
  if (pos == std::string::npos) return -1;
  return std::strtol(status.c_str() + pos + key.size() + 2, nullptr, 10);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << "\n" << in.rdbuf();
  return ss.str();
}

}  // namespace

pid_t findChild(pid_t parent, const std::string& commPrefix) {
  for (const auto& name : numericEntries("/proc")) {
    // stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    std::string stat = readFirstLine("/proc/" + name + "/stat");
    auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string comm = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && comm.rfind(commPrefix, 0) == 0) return static_cast<pid_t>(std::atoi(name.c_str()));
  }
  return -1;
}

MemoryStatus readMemoryStatus(pid_t pid) {
  std::string s = slurp("/proc/" + std::to_string(pid) + "/status");
  MemoryStatus m;
  m.vmRssKiB = field(s, "VmRSS");
  m.vmHwmKiB = field(s, "VmHWM");
  m.rssAnonKiB = field(s, "RssAnon");
  m.rssFileKiB = field(s, "RssFile");
  m.vmSizeKiB = field(s, "VmSize");
  m.threads = static_cast<int>(field(s, "Threads"));
  return m;
}

std::vector<MappingRss> readRssByMapping(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
  std::map<std::string, long> byName;
  std::string current = "[anon]";
  for (std::string line; std::getline(in, line);) {
    // A mapping's header: "start-end perms offset dev inode [name]"; its
    // fields follow as "Key: value kB".
    auto colon = line.find(':');
    auto space = line.find(' ');
    if (colon == std::string::npos || (space != std::string::npos && space < colon)) {
      std::istringstream header(line);
      std::string range, perms, offset, dev, inode, name;
      header >> range >> perms >> offset >> dev >> inode;
      std::getline(header >> std::ws, name);
      current = name.empty() ? "[anon]" : name;
      continue;
    }
    if (line.rfind("Rss:", 0) == 0) byName[current] += std::strtol(line.c_str() + 4, nullptr, 10);
  }
  std::vector<MappingRss> out;
  for (const auto& [name, kib] : byName) out.push_back({name, kib});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.rssKiB > b.rssKiB; });
  return out;
}

std::vector<ThreadSwitches> readThreadSwitches(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  std::vector<ThreadSwitches> out;
  for (const auto& name : numericEntries(dir)) {
    std::string status = slurp(dir + "/" + name + "/status");
    if (status.size() < 2) continue;  // the thread ended meanwhile
    ThreadSwitches t;
    t.tid = static_cast<pid_t>(std::atoi(name.c_str()));
    t.comm = readFirstLine(dir + "/" + name + "/comm");
    t.voluntary = field(status, "voluntary_ctxt_switches");
    t.nonvoluntary = field(status, "nonvoluntary_ctxt_switches");
    out.push_back(std::move(t));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.tid < b.tid; });
  return out;
}

}  // namespace kubeaccel::bench
