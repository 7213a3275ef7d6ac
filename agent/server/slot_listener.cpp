#include "server/slot_listener.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <vector>

namespace kubeaccel::agent {
namespace {

constexpr uint64_t kListenTag = ~uint64_t{0};
constexpr uint64_t kStopTag = ~uint64_t{0} - 1;
// How long accepting pauses after the kernel refused an accept (EMFILE...):
// connections wait in the backlog meanwhile.
constexpr int kAcceptRetryMs = 100;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

SlotListener::SlotListener(std::string path, std::string slotId, grpc::Server* server, size_t maxConnections,
                           mode_t mode)
    : path_(std::move(path)), slotId_(std::move(slotId)), server_(server), max_(maxConnections) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path))
    throw std::runtime_error("socket path " + path_ + " is longer than " + std::to_string(sizeof(addr.sun_path) - 1) +
                             " bytes; use a shorter --agent-dir");
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_) fail("cannot create a socket for " + path_);
  if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("cannot bind " + path_);
  // A slot's: any container user may connect (only the pod that owns the
  // slot has it mounted). Until chmod, the umask's mode keeps others out.
  if (::chmod(path_.c_str(), mode) != 0 || ::listen(listen_.get(), SOMAXCONN) != 0) {
    int e = errno;
    ::unlink(path_.c_str());
    errno = e;
    fail("cannot listen on " + path_);
  }
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll_ || !stop_) fail("cannot set up the listener of " + path_);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_.get(), &ev);
  ev.data.u64 = kStopTag;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, stop_.get(), &ev);
  thread_ = std::thread([this] { run(); });
}

SlotListener::~SlotListener() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stop_.get(), &one, sizeof one);
  thread_.join();
  ::unlink(path_.c_str());
}

namespace {

// Whether the process has descriptors to spare beyond one more connection.
// gRPC needs a few of its own for each connection it takes (and its error
// paths when it gets none are not safe), so a connection is refused while
// fewer than kHeadroom are left, rather than handed to gRPC.
bool descriptorHeadroom(int anyFd) {
  constexpr int kHeadroom = 16;
  std::vector<UniqueFd> probe;
  for (int i = 0; i < kHeadroom; ++i) {
    probe.emplace_back(::fcntl(anyFd, F_DUPFD_CLOEXEC, 0));
    if (!probe.back()) return false;
  }
  return true;
}

}  // namespace

void SlotListener::run() {
  epoll_event events[64];
  bool paused = false;
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 64, paused ? kAcceptRetryMs : -1);
    if (n < 0 && errno != EINTR) {
      spdlog::error("slot {}: epoll_wait: {}", slotId_, std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(kAcceptRetryMs));
      continue;
    }
    if (paused) {  // accept again, whether or not the listener woke us
      paused = false;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenTag;
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_.get(), &ev);
    }
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kStopTag) {
        // The duplicates go; gRPC keeps (and closes) its own descriptors.
        for (int fd : watched_) ::close(fd);
        watched_.clear();
        return;
      }
      if (tag == kListenTag) {
        for (int k = 0; k < 64; ++k) {  // a bounded batch, then look at the rest
          UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
          if (!conn) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) break;
            spdlog::warn("slot {}: cannot accept a connection: {}; accepting again in {} ms (connections open: {})",
                         slotId_, std::strerror(errno), kAcceptRetryMs, open_.load());
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listen_.get(), nullptr);
            paused = true;
            break;
          }
          ucred peer{};
          socklen_t len = sizeof peer;
          bool ours = ::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0 && peer.pid == ::getpid();
          if (!ours && open_.load() >= max_) {
            if (refused_++ % 1000 == 0)
              spdlog::warn("slot {}: refused a connection: {} open, the limit is {} (--max-connections); "
                           "{} refused so far",
                           slotId_, open_.load(), max_, refused_);
            continue;  // closed
          }
          UniqueFd watch(::fcntl(conn.get(), F_DUPFD_CLOEXEC, 0));
          if (!watch || !descriptorHeadroom(watch.get())) {
            if (unwatchable_++ % 1000 == 0)
              spdlog::warn("slot {}: cannot watch a connection: {}; closed ({} so far)", slotId_,
                           watch ? "fewer than 16 file descriptors left" : std::strerror(errno), unwatchable_);
            continue;
          }
          epoll_event ev{};
          ev.events = EPOLLRDHUP;  // the peer hung up; EPOLLHUP/ERR come anyway
          ev.data.u64 = static_cast<uint64_t>(watch.get());
          if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, watch.get(), &ev) != 0) continue;
          ++open_;
          watched_.insert(watch.release());
          grpc::AddInsecureChannelFromFd(server_, conn.release());
        }
        continue;
      }
      // A connection ended: its peer hung up.
      int fd = static_cast<int>(tag);
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
      ::close(fd);
      watched_.erase(fd);
      --open_;
    }
  }
}

}  // namespace kubeaccel::agent
