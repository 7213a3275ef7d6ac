#pragma once
// Runs the real kubeaccel-plugin binary against a umockdev testbed and the
// kubelet stand-in. The test binary runs under umockdev-wrapper, so the
// testbed it creates (UMOCKDEV_DIR) and the preload reach the plugin process
// it spawns: libudev there enumerates and receives uevents for real.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kubelet_standin.hpp"

typedef struct _UMockdevTestbed UMockdevTestbed;

namespace kubeaccel::testing {

// A file's text; "" when it cannot be read (a log not yet written).
std::string slurp(const std::string& path);

class PluginHarness {
 public:
  // Simulated: a umockdev testbed (the process must run under umockdev-wrapper).
  // Real: the host's own sysfs, untouched; plug() is not available.
  enum class Sysfs { Simulated, Real };
  explicit PluginHarness(Sysfs sysfs = Sysfs::Simulated);
  ~PluginHarness();

  // Plugs in a device description from tests/testbeds/: each device not yet
  // in the testbed is added parents first, and umockdev announces each with
  // an "add" uevent, as the kernel would. Returns the syspaths it added.
  std::vector<std::string> plug(const std::string& testbedFile);
  // The same for a description given as text (say, a file with one value spoiled).
  std::vector<std::string> plugText(const std::string& description);
  static std::string readTestbed(const std::string& testbedFile);
  // Unplugs the device at `syspath` and everything under it, children first:
  // a "remove" uevent for each, then it leaves the testbed.
  void unplug(const std::string& syspath);
  void uevent(const std::string& syspath, const std::string& action);
  // A driver lets go of the device at `syspath`, as the kernel does it: the
  // nodes it made go first (`children`, unplugged), then its "driver" link,
  // then an "unbind" uevent.
  void unbindDriver(const std::string& syspath, const std::vector<std::string>& children);
  // The driver takes it again: the link comes back, the nodes it makes
  // (`testbedFile`'s devices not in the testbed) are added, then "bind".
  void bindDriver(const std::string& syspath, const std::string& testbedFile);

  std::string writeConfig(const std::string& json);
  // Starts the plugin; `config` is a file path or "" for the built-in catalog.
  void startPlugin(const std::string& config, const std::vector<std::string>& extraArgs = {});
  // Sends `sig` and waits; returns the exit status (or 128+signal).
  int stopPlugin(int sig);
  // Runs the plugin to completion with these args (for usage/config errors);
  // stdout and stderr both land in `output`.
  int runPluginToExit(const std::vector<std::string>& args, std::string* output);
  // Runs any program to completion in the testbed; stdout and stderr apart.
  int run(const std::vector<std::string>& argv, std::string* out, std::string* err);
  bool pluginRunning() const { return pid_ > 0; }
  pid_t pluginPid() const { return pid_; }

  // The agent, on the same testbed: serves <agentDir()>/<class>/<id>/s<k>/inference.sock.
  // `models` defaults to a private copy of the generated models (modelsDir()).
  void startAgent(const std::string& config, const std::vector<std::string>& extraArgs = {});
  int stopAgent(int sig);
  // From now on the agent runs as the DaemonSet runs it: uid 0 with every
  // capability dropped (setpriv: empty bounding, inheritable and ambient
  // sets, so root gets no capability at exec), and `extraPrefix` before it
  // (say, prlimit for an fd or memory limit).
  void runAgentAsDaemonSet(std::vector<std::string> extraPrefix = {});
  // From now on the agent starts in a memory cgroup of its own (cgroup v1)
  // limited to `bytes`, as a container's memory limit would. Call after
  // runAgentAsDaemonSet. False (nothing changed) where the memory cgroup
  // cannot be written.
  bool limitAgentMemory(uint64_t bytes);
  // argv as an unprivileged user of the node: uid/gid 65534, no supplementary groups.
  static std::vector<std::string> asTenant(std::vector<std::string> argv);
  // argv as a pod holding the slot directory `slotDir`, the way a container
  // runtime gives it one: in a private mount namespace, root bind-mounts the
  // slot at podPath(slotDir) (the agent directory is 0700, so only a mount
  // reaches it), then the process becomes uid/gid 65534. Every occurrence of
  // `slotDir` in argv is replaced by podPath(slotDir).
  std::vector<std::string> asPod(const std::string& slotDir, std::vector<std::string> argv) const;
  // Where asPod() mounts `slotDir`: <root>/pod-<slot directory's name>.
  std::string podPath(const std::string& slotDir) const;
  bool agentRunning() const { return agentPid_ > 0; }
  pid_t agentPid() const { return agentPid_; }
  std::string agentLog() const;
  bool waitForAgentLog(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  // A copy of the generated models this test may change.
  const std::string& modelsDir();
  std::string slotSocket(const std::string& cls, const std::string& id, int slot) const {
    return agentDir() + "/" + cls + "/" + id + "/s" + std::to_string(slot) + "/inference.sock";
  }
  std::string pluginLog() const;
  // Waits until the plugin's log holds `text` (logs trail the RPCs they describe).
  bool waitForLog(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  KubeletStandin& kubelet() { return *kubelet_; }
  const std::string& root() const { return root_; }
  std::string kubeletDir() const { return root_ + "/kubelet"; }
  std::string devicePluginDir() const { return root_ + "/kubelet/device-plugins"; }
  std::string agentDir() const { return root_ + "/agent"; }
  std::vector<std::string> socketsInDevicePluginDir() const;

 private:
  // Where the testbed keeps a /sys path.
  std::string inTestbed(const std::string& syspath) const;

  std::string root_;
  UMockdevTestbed* testbed_ = nullptr;
  std::unique_ptr<KubeletStandin> kubelet_;
  pid_t pid_ = -1;
  pid_t agentPid_ = -1;
  std::string modelsDir_;
  std::vector<std::string> agentPrefix_;  // runs before the agent binary
  std::string memoryCgroup_;              // made by limitAgentMemory; removed at the end
  int configCount_ = 0;
  std::vector<std::string> present_;  // syspaths in the testbed
  std::set<std::string> nodesMade_;    // device nodes umockdev has created
  std::map<std::string, std::string> unboundDrivers_;  // syspath -> its driver link's target
};

}  // namespace kubeaccel::testing
