#include "shm/sigbus_guard.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>

namespace kubeaccel::agent::sigbus {
namespace {

// seq is odd while an entry is being written; base == 0 means free. Writers of one entry are
// serialized by `claimed`.
struct Entry {
  std::atomic<uint64_t> seq{0};
  std::atomic<uintptr_t> base{0};
  std::atomic<size_t> len{0};
  std::atomic<bool> poisoned{false};
  std::atomic<bool> claimed{false};
};

Entry g_table[kTableSize];
std::atomic<size_t> g_hint{0};
struct sigaction g_previous;
std::once_flag g_installOnce;
bool g_installed = false;

static_assert(std::atomic<uintptr_t>::is_always_lock_free && std::atomic<size_t>::is_always_lock_free &&
              std::atomic<uint64_t>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

// A seqlock without fences (acquire/release on every field): a reader that sees any of the new
// values also sees the odd sequence number that preceded them.
void writeEntry(Entry& e, uintptr_t base, size_t len) {
  uint64_t s = e.seq.load(std::memory_order_relaxed);
  e.seq.store(s + 1, std::memory_order_relaxed);
  e.base.store(base, std::memory_order_release);
  e.len.store(len, std::memory_order_release);
  e.seq.store(s + 2, std::memory_order_release);
}

void passOn(int sig, siginfo_t* info, void* context) {
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if ((g_previous.sa_flags & SA_SIGINFO) == 0 && g_previous.sa_handler != SIG_DFL &&
      g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // Default action (an ignored synchronous SIGBUS would fault forever, so treat it as default too):
  // restore it and re-raise; the signal is delivered once this handler returns.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGBUS, &dfl, nullptr);
  raise(SIGBUS);
}

void onSigbus(int sig, siginfo_t* info, void* context) {
  int savedErrno = errno;
  auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  if (info->si_code == BUS_ADRERR) {
    for (Entry& e : g_table) {
      uint64_t s1 = e.seq.load(std::memory_order_acquire);
      if ((s1 & 1) != 0) continue;  // being written: not the mapping in use by this thread
      uintptr_t base = e.base.load(std::memory_order_acquire);
      size_t len = e.len.load(std::memory_order_acquire);
      if (e.seq.load(std::memory_order_relaxed) != s1) continue;  // torn: changed while read
      if (base == 0 || addr < base || addr - base >= len) continue;
      // The raw syscall: async-signal-safe and not seen by sanitizer interceptors.
      long r = syscall(SYS_mmap, base, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      if (r == static_cast<long>(base)) {
        e.poisoned.store(true, std::memory_order_release);
        errno = savedErrno;
        return;  // the faulting access is retried and now reads/writes zero pages
      }
      break;
    }
  }
  errno = savedErrno;
  passOn(sig, info, context);
}

void install() {
  struct sigaction sa {};
  sa.sa_sigaction = onSigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  g_installed = sigaction(SIGBUS, &sa, &g_previous) == 0;
}

}  // namespace

int protect(void* base, size_t len) {
  std::call_once(g_installOnce, install);
  if (!g_installed || base == nullptr || len == 0) return -1;
  size_t start = g_hint.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kTableSize; ++i) {
    size_t idx = (start + i) % kTableSize;
    Entry& e = g_table[idx];
    bool expected = false;
    if (e.claimed.load(std::memory_order_relaxed) ||
        !e.claimed.compare_exchange_strong(expected, true, std::memory_order_acquire))
      continue;
    e.poisoned.store(false, std::memory_order_relaxed);
    writeEntry(e, reinterpret_cast<uintptr_t>(base), len);
    g_hint.store((idx + 1) % kTableSize, std::memory_order_relaxed);
    return static_cast<int>(idx);
  }
  return -1;
}

void release(int index) {
  if (index < 0 || static_cast<size_t>(index) >= kTableSize) return;
  Entry& e = g_table[index];
  writeEntry(e, 0, 0);
  e.poisoned.store(false, std::memory_order_relaxed);
  e.claimed.store(false, std::memory_order_release);
}

bool poisoned(int index) {
  if (index < 0 || static_cast<size_t>(index) >= kTableSize) return false;
  return g_table[index].poisoned.load(std::memory_order_acquire);
}

}  // namespace kubeaccel::agent::sigbus
