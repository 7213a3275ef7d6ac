#pragma once
// What /proc says about a process: its memory and threads, and each thread's
// context switches (a thread blocked for good switches no more).

#include <sys/types.h>

#include <string>
#include <vector>

namespace kubeaccel::bench {

// The child of `parent` whose comm starts with `commPrefix` (comm is cut to
// 15 characters: "kubeaccel-plugi"); -1 when there is none.
pid_t findChild(pid_t parent, const std::string& commPrefix);

struct MemoryStatus {
  long vmRssKiB = -1, vmHwmKiB = -1, rssAnonKiB = -1, rssFileKiB = -1, vmSizeKiB = -1;
  int threads = -1;
};
MemoryStatus readMemoryStatus(pid_t pid);

// Resident KiB per mapped file ("[anon]", "[heap]", "[stack]" for the rest),
// largest first, from /proc/<pid>/smaps.
struct MappingRss {
  std::string name;
  long rssKiB = 0;
};
std::vector<MappingRss> readRssByMapping(pid_t pid);

struct ThreadSwitches {
  pid_t tid = 0;
  std::string comm;
  long voluntary = 0, nonvoluntary = 0;
};
// One entry per thread alive now, in tid order.
std::vector<ThreadSwitches> readThreadSwitches(pid_t pid);

}  // namespace kubeaccel::bench
