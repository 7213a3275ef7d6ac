#include "util/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace kubeaccel {
namespace {
[[noreturn]] void sysFail(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}
}  // namespace

void blockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) sysFail("pthread_sigmask");
}

struct EventLoop::Shared {
  std::mutex mu;
  std::vector<Callback> posted;
  std::atomic<bool> stopping{false};
};

EventLoop::EventLoop() : shared_(std::make_unique<Shared>()) {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) sysFail("epoll_create1");
  wakeFd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wakeFd_) sysFail("eventfd");
  watchFd(wakeFd_.get(), [this] {
    uint64_t v;
    while (::read(wakeFd_.get(), &v, sizeof v) > 0) {
    }
    drainPosted();
  });
}

EventLoop::~EventLoop() = default;

void EventLoop::watchFd(int fd, Callback cb) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) sysFail("epoll_ctl(ADD)");
  handlers_[fd] = std::move(cb);
}

void EventLoop::unwatchFd(int fd) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

std::unique_ptr<EventLoop::Timer> EventLoop::makeTimer(Callback cb) {
  auto t = std::make_unique<Timer>();
  t->fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!t->fd_) sysFail("timerfd_create");
  Timer* raw = t.get();
  watchFd(raw->fd_.get(), [raw, cb = std::move(cb)] {
    uint64_t expirations;
    if (::read(raw->fd_.get(), &expirations, sizeof expirations) <= 0) return;
    raw->armed_ = false;
    cb();
  });
  return t;
}

void EventLoop::removeTimer(Timer& t) { unwatchFd(t.fd_.get()); }

void EventLoop::Timer::armIn(std::chrono::nanoseconds delay) {
  if (delay < std::chrono::nanoseconds(1)) delay = std::chrono::nanoseconds(1);  // 0 would disarm
  itimerspec spec{};
  spec.it_value.tv_sec = delay.count() / 1'000'000'000;
  spec.it_value.tv_nsec = delay.count() % 1'000'000'000;
  if (::timerfd_settime(fd_.get(), 0, &spec, nullptr) != 0) sysFail("timerfd_settime");
  armed_ = true;
}

void EventLoop::Timer::armAt(Clock::time_point when) { armIn(when - Clock::now()); }

void EventLoop::Timer::disarm() {
  itimerspec spec{};
  ::timerfd_settime(fd_.get(), 0, &spec, nullptr);
  armed_ = false;
}

void EventLoop::onSignals(std::initializer_list<int> signals, std::function<void(int)> cb) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  // Block in this thread; threads created afterwards inherit the mask, so the
  // signal can only arrive through the signalfd.
  if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) sysFail("pthread_sigmask");
  signalFd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signalFd_) sysFail("signalfd");
  watchFd(signalFd_.get(), [this, cb = std::move(cb)] {
    signalfd_siginfo info;
    while (::read(signalFd_.get(), &info, sizeof info) == sizeof info) cb(static_cast<int>(info.ssi_signo));
  });
}

void EventLoop::run() {
  epoll_event events[16];
  while (!shared_->stopping.load()) {
    int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      sysFail("epoll_wait");
    }
    for (int i = 0; i < n && !shared_->stopping.load(); ++i) {
      auto it = handlers_.find(events[i].data.fd);
      if (it == handlers_.end()) continue;
      Callback cb = it->second;  // a handler may unwatch itself
      cb();
    }
  }
}

void EventLoop::stop() {
  shared_->stopping = true;
  wake();
}

void EventLoop::post(Callback cb) {
  {
    std::lock_guard lock(shared_->mu);
    shared_->posted.push_back(std::move(cb));
  }
  wake();
}

void EventLoop::wake() {
  uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(wakeFd_.get(), &one, sizeof one);
}

void EventLoop::drainPosted() {
  std::vector<Callback> batch;
  {
    std::lock_guard lock(shared_->mu);
    batch.swap(shared_->posted);
  }
  for (auto& cb : batch) cb();
}

}  // namespace kubeaccel
