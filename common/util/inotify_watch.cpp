#include "util/inotify_watch.hpp"

#include <sys/inotify.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace kubeaccel {

InotifyWatch::InotifyWatch(const std::string& dir) {
  fd_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!fd_) throw std::runtime_error(std::string("inotify_init1: ") + std::strerror(errno));
  // IN_MOVED_*: an atomic rename over kubelet.sock counts as a new socket too.
  if (::inotify_add_watch(fd_.get(), dir.c_str(), IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM) < 0)
    throw std::runtime_error("inotify on " + dir + ": " + std::strerror(errno));
}

void InotifyWatch::dispatch(const Callback& cb) {
  alignas(inotify_event) char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n <= 0) return;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->len == 0) continue;
      bool created = ev->mask & (IN_CREATE | IN_MOVED_TO);
      bool deleted = ev->mask & (IN_DELETE | IN_MOVED_FROM);
      if (created) cb(Change::Created, ev->name);
      if (deleted) cb(Change::Deleted, ev->name);
    }
  }
}

}  // namespace kubeaccel
