#include "server/slot_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "util/unique_fd.hpp"

namespace kubeaccel::agent {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error("cannot " + what + " " + path + ": " + std::strerror(errno));
}

// Makes `name` under `parent` a directory of ours with `mode`; returns an fd
// on it. O_NOFOLLOW: a symlink planted at the name is refused, not followed.
UniqueFd ownDirectory(int parent, const std::string& name, const std::string& path, mode_t mode) {
  if (::mkdirat(parent, name.c_str(), mode) != 0 && errno != EEXIST) fail("create", path);
  UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) fail("open directory", path);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) fail("stat", path);
  if (st.st_uid != ::geteuid())
    throw std::runtime_error(path + " belongs to uid " + std::to_string(st.st_uid) + ", not to the agent (uid " +
                             std::to_string(::geteuid()) + ")");
  // Explicit, since the umask trims mkdir's mode; also turns an older
  // agent's 0777 slot directory into 0755.
  if ((st.st_mode & 07777) != mode && ::fchmod(fd.get(), mode) != 0) fail("chmod", path);
  return fd;
}

}  // namespace

std::string slotShmDir(const std::string& slotDir) { return slotDir + "/shm"; }

void prepareSlotDir(const std::string& slotDir) {
  std::error_code ec;
  std::filesystem::path p(slotDir);
  std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) throw std::runtime_error("cannot create " + p.parent_path().string() + ": " + ec.message());
  UniqueFd parent(::open(p.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent) fail("open", p.parent_path().string());
  UniqueFd slot = ownDirectory(parent.get(), p.filename().string(), slotDir, 0755);
  ownDirectory(slot.get(), "shm", slotShmDir(slotDir), 01777);

  // The socket's name must be free for bind(). A socket of ours (an agent
  // that did not stop cleanly) is removed; anything else there was left by
  // a tenant of an older layout (a directory, a FIFO, a symlink...): it is
  // renamed aside within the slot directory, which needs no permission on
  // the thing itself, only on the directory, which is ours.
  struct stat st{};
  if (::fstatat(slot.get(), "inference.sock", &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    fail("stat", slotDir + "/inference.sock");
  }
  if (S_ISSOCK(st.st_mode) && st.st_uid == ::geteuid()) {
    if (::unlinkat(slot.get(), "inference.sock", 0) != 0) fail("remove the stale socket", slotDir + "/inference.sock");
    return;
  }
  std::string aside = ".leftover-inference.sock-" +
                      std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  if (::renameat(slot.get(), "inference.sock", slot.get(), aside.c_str()) != 0)
    fail("move aside what is at", slotDir + "/inference.sock");
  spdlog::warn("{}: something other than the agent's socket was at inference.sock (mode {:o}, uid {}); moved to {}",
               slotDir, st.st_mode, st.st_uid, aside);
}

void prepareShmDir(const std::string& slotDir) {
  UniqueFd slot(::open(slotDir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!slot) fail("open", slotDir);
  ownDirectory(slot.get(), "shm", slotShmDir(slotDir), 01777);
}

}  // namespace kubeaccel::agent
