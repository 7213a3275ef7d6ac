#pragma once
// A single-threaded epoll loop: file descriptors, one-shot timers and signals.
// It sleeps until something happens; nothing in it wakes up periodically.

#include <chrono>
#include <functional>
#include <map>
#include <memory>

#include "util/unique_fd.hpp"

namespace kubeaccel {

// Blocks SIGTERM and SIGINT in the calling thread. Call it first in main():
// threads inherit the mask, so the signals then reach only the loop's signalfd.
void blockTerminationSignals();

class EventLoop {
 public:
  using Callback = std::function<void()>;
  using Clock = std::chrono::steady_clock;

  EventLoop();
  ~EventLoop();

  // Calls `cb` whenever `fd` is readable. The fd stays owned by the caller.
  void watchFd(int fd, Callback cb);
  void unwatchFd(int fd);

  // A one-shot timer. Re-arming replaces the previous deadline.
  class Timer {
   public:
    void armIn(std::chrono::nanoseconds delay);
    void armAt(Clock::time_point when);
    void disarm();
    bool armed() const { return armed_; }

   private:
    friend class EventLoop;
    UniqueFd fd_;
    bool armed_ = false;
  };
  std::unique_ptr<Timer> makeTimer(Callback cb);
  void removeTimer(Timer& t);

  // Delivers SIGTERM/SIGINT/... through the loop; blocks them for the thread.
  void onSignals(std::initializer_list<int> signals, std::function<void(int)> cb);

  // Runs until stop(). Thread-safe: stop() and post() may be called from any thread.
  void run();
  void stop();
  void post(Callback cb);

 private:
  void wake();
  void drainPosted();

  UniqueFd epoll_;
  UniqueFd wakeFd_;
  UniqueFd signalFd_;
  std::map<int, Callback> handlers_;
  struct Shared;
  std::unique_ptr<Shared> shared_;
};

}  // namespace kubeaccel
