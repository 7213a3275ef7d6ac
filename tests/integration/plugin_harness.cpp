#include "plugin_harness.hpp"

#include "util/read_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <umockdev.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace kubeaccel::testing {
namespace fs = std::filesystem;

std::string slurp(const std::string& path) { return readFile(path).value_or(""); }

namespace {

std::string makeTempRoot() {
  std::string tmpl = (fs::temp_directory_path() / "kubeaccel-it-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// fork/exec rather than posix_spawn: the child asks to be killed when the
// test process dies, so a crashed or killed test leaves no plugin behind.
pid_t spawn(const std::vector<std::string>& argv, const std::string& logPath, std::string outPath = "") {
  if (outPath.empty()) outPath = logPath;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int err = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int out = ::open(outPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err < 0 || out < 0) ::_exit(127);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execve(args[0], args.data(), environ);
    ::_exit(127);
  }
  return pid;
}

int waitExit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

PluginHarness::PluginHarness(Sysfs sysfs) : root_(makeTempRoot()) {
  // umockdev_in_mock_environment() is unreliable here; look for the preload.
  const char* preload = std::getenv("LD_PRELOAD");
  bool underUmockdev = preload && std::strstr(preload, "umockdev");
  if (underUmockdev != (sysfs == Sysfs::Simulated))
    throw std::runtime_error(sysfs == Sysfs::Simulated ? "simulated devices need umockdev-wrapper"
                                                       : "real-sysfs tests must not run under umockdev-wrapper");
  fs::create_directories(devicePluginDir());
  fs::create_directories(agentDir());
  fs::create_directories(root_ + "/cdi");
  if (sysfs == Sysfs::Simulated) testbed_ = umockdev_testbed_new();
  kubelet_ = std::make_unique<KubeletStandin>(devicePluginDir());
  kubelet_->start();
}

PluginHarness::~PluginHarness() {
  if (pid_ > 0) stopPlugin(SIGKILL);
  if (agentPid_ > 0) stopAgent(SIGKILL);
  if (!memoryCgroup_.empty()) ::rmdir(memoryCgroup_.c_str());
  kubelet_.reset();
  if (testbed_) g_object_unref(testbed_);
  std::error_code ec;
  fs::remove_all(root_, ec);
}

std::string PluginHarness::readTestbed(const std::string& file) {
  std::string path = std::string(KUBEACCEL_TESTBEDS_DIR) + "/" + file;
  if (!fs::exists(path)) throw std::runtime_error("no testbed " + path);
  return slurp(path);
}

std::vector<std::string> PluginHarness::plug(const std::string& file) { return plugText(readTestbed(file)); }

std::vector<std::string> PluginHarness::plugText(const std::string& description) {
  if (!testbed_) throw std::logic_error("plug() needs the simulated sysfs");
  std::istringstream in(description);
  // umockdev-record lists a device before its parents; adding a child before
  // its parent would announce it without one, so add in reverse.
  std::vector<std::string> paragraphs(1);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) {
      if (!paragraphs.back().empty()) paragraphs.emplace_back();
      continue;
    }
    paragraphs.back() += line + "\n";
  }
  std::vector<std::string> added;
  for (auto it = paragraphs.rbegin(); it != paragraphs.rend(); ++it) {
    if (it->rfind("P: ", 0) != 0) continue;
    std::string syspath = "/sys" + it->substr(3, it->find('\n') - 3);
    if (std::find(present_.begin(), present_.end(), syspath) != present_.end()) continue;  // a shared parent
    // umockdev keeps every node it ever made (removing a device leaves it), and
    // refuses to make one twice: a device plugged in again reuses its node.
    std::string paragraph;
    std::istringstream lines(*it);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("N: ", 0) == 0) {
        std::string node = line.substr(3, line.find('=') == std::string::npos ? std::string::npos : line.find('=') - 3);
        if (!nodesMade_.insert(node).second) continue;
      }
      paragraph += line + "\n";
    }
    GError* err = nullptr;
    if (!umockdev_testbed_add_from_string(testbed_, paragraph.c_str(), &err)) {
      std::string msg = err ? err->message : "unknown error";
      if (err) g_error_free(err);
      throw std::runtime_error("umockdev: cannot add " + syspath + ": " + msg);
    }
    present_.push_back(syspath);
    added.push_back(syspath);
  }
  return added;
}

void PluginHarness::uevent(const std::string& syspath, const std::string& action) {
  umockdev_testbed_uevent(testbed_, syspath.c_str(), action.c_str());
}

std::string PluginHarness::inTestbed(const std::string& syspath) const {
  gchar* dir = umockdev_testbed_get_sys_dir(testbed_);
  std::string out = std::string(dir) + syspath.substr(std::string("/sys").size());
  g_free(dir);
  return out;
}

void PluginHarness::unbindDriver(const std::string& syspath, const std::vector<std::string>& children) {
  for (const auto& child : children) unplug(child);
  std::string link = inTestbed(syspath) + "/driver";
  unboundDrivers_[syspath] = fs::read_symlink(link).string();
  fs::remove(link);
  uevent(syspath, "unbind");
}

void PluginHarness::bindDriver(const std::string& syspath, const std::string& testbedFile) {
  std::string link = inTestbed(syspath) + "/driver";
  fs::create_symlink(unboundDrivers_.at(syspath), link);
  unboundDrivers_.erase(syspath);
  plug(testbedFile);
  uevent(syspath, "bind");
}

void PluginHarness::unplug(const std::string& syspath) {
  if (!testbed_) throw std::logic_error("unplug() needs the simulated sysfs");
  std::vector<std::string> subtree;
  for (const auto& p : present_)
    if (p == syspath || p.rfind(syspath + "/", 0) == 0) subtree.push_back(p);
  // Deepest first: the kernel removes children before their parent.
  std::sort(subtree.begin(), subtree.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& p : subtree) {
    uevent(p, "remove");
    umockdev_testbed_remove_device(testbed_, p.c_str());
    present_.erase(std::find(present_.begin(), present_.end(), p));
  }
}

std::string PluginHarness::writeConfig(const std::string& json) {
  std::string path = root_ + "/config-" + std::to_string(configCount_++) + ".json";
  std::ofstream(path) << json;
  return path;
}

void PluginHarness::startPlugin(const std::string& config, const std::vector<std::string>& extraArgs) {
  std::vector<std::string> argv = {KUBEACCEL_PLUGIN_BIN, "--kubelet-dir", kubeletDir(), "--agent-dir",
                                   agentDir(),           "--cdi-dir",     root_ + "/cdi", "--log-level", "debug"};
  if (!config.empty()) {
    argv.push_back("--config");
    argv.push_back(config);
  }
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  pid_ = spawn(argv, root_ + "/plugin.log");
}

const std::string& PluginHarness::modelsDir() {
  if (modelsDir_.empty()) {
    modelsDir_ = root_ + "/models";
    fs::copy(KUBEACCEL_MODELS_DIR, modelsDir_, fs::copy_options::recursive);
  }
  return modelsDir_;
}

void PluginHarness::runAgentAsDaemonSet(std::vector<std::string> extraPrefix) {
  agentPrefix_ = std::move(extraPrefix);
  for (const char* a : {"/usr/bin/setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--"})
    agentPrefix_.push_back(a);
  // Tenants (uid 65534) reach their slot directories through the test's root.
  ::chmod(root_.c_str(), 0755);
}

bool PluginHarness::limitAgentMemory(uint64_t bytes) {
  // Through /proc/self/root: umockdev's preload redirects paths under /sys
  // into the testbed, in this process and in the ones it starts.
  std::string cg = "/proc/self/root/sys/fs/cgroup/memory/" + fs::path(root_).filename().string();
  if (::mkdir(cg.c_str(), 0755) != 0 && errno != EEXIST) return false;
  std::ofstream limit(cg + "/memory.limit_in_bytes");
  limit << bytes;
  limit.close();
  if (!limit) {
    ::rmdir(cg.c_str());
    return false;
  }
  memoryCgroup_ = cg;
  // The shell joins the cgroup, then becomes the agent (through setpriv).
  std::vector<std::string> prefix = {"/bin/sh", "-c", "echo $$ > '" + cg + "/cgroup.procs' && exec \"$@\"", "sh"};
  agentPrefix_.insert(agentPrefix_.begin(), prefix.begin(), prefix.end());
  return true;
}

std::vector<std::string> PluginHarness::asTenant(std::vector<std::string> argv) {
  std::vector<std::string> out = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string PluginHarness::podPath(const std::string& slotDir) const {
  return root_ + "/pod-" + fs::path(slotDir).filename().string();
}

std::vector<std::string> PluginHarness::asPod(const std::string& slotDir, std::vector<std::string> argv) const {
  std::string mnt = podPath(slotDir);
  fs::create_directories(mnt);
  for (auto& a : argv)
    for (std::size_t at = a.find(slotDir); at != std::string::npos; at = a.find(slotDir, at + mnt.size()))
      a.replace(at, slotDir.size(), mnt);
  // sh -c SCRIPT $0 $1 ARGV...: mount, drop $1, become the tenant and run ARGV.
  std::vector<std::string> out = {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                                  "mount --bind \"$0\" \"$1\" && shift && exec /usr/bin/setpriv --reuid=65534 "
                                  "--regid=65534 --clear-groups -- \"$@\"",
                                  slotDir, mnt};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void PluginHarness::startAgent(const std::string& config, const std::vector<std::string>& extraArgs) {
  // The build's backends; an --backend-dir in extraArgs comes later and wins.
  std::vector<std::string> argv = agentPrefix_;
  for (const std::string& a : {std::string(KUBEACCEL_AGENT_BIN), std::string("--agent-dir"), agentDir(),
                               std::string("--models"), modelsDir(), std::string("--backend-dir"),
                               std::string(KUBEACCEL_BACKENDS_DIR), std::string("--log-level"), std::string("debug")})
    argv.push_back(a);
  if (!config.empty()) {
    argv.push_back("--config");
    argv.push_back(config);
  }
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  agentPid_ = spawn(argv, root_ + "/agent.log");
}

int PluginHarness::stopAgent(int sig) {
  if (agentPid_ <= 0) return -1;
  ::kill(agentPid_, sig);
  int status = waitExit(agentPid_);
  agentPid_ = -1;
  return status;
}

std::string PluginHarness::agentLog() const { return slurp(root_ + "/agent.log"); }

bool PluginHarness::waitForAgentLog(const std::string& text, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (agentLog().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

int PluginHarness::stopPlugin(int sig) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  int status = waitExit(pid_);
  pid_ = -1;
  return status;
}

int PluginHarness::runPluginToExit(const std::vector<std::string>& args, std::string* output) {
  std::string log = root_ + "/run-" + std::to_string(configCount_++) + ".log";
  std::vector<std::string> argv = {KUBEACCEL_PLUGIN_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  int status = waitExit(spawn(argv, log));
  *output = slurp(log);
  return status;
}

int PluginHarness::run(const std::vector<std::string>& argv, std::string* out, std::string* err) {
  std::string base = root_ + "/run-" + std::to_string(configCount_++);
  int status = waitExit(spawn(argv, base + ".err", base + ".out"));
  *out = slurp(base + ".out");
  *err = slurp(base + ".err");
  return status;
}

std::string PluginHarness::pluginLog() const { return slurp(root_ + "/plugin.log"); }

bool PluginHarness::waitForLog(const std::string& text, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pluginLog().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::vector<std::string> PluginHarness::socketsInDevicePluginDir() const {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(devicePluginDir())) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace kubeaccel::testing
