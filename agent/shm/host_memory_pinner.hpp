#pragma once
// Pinning shared-memory regions for an accelerator's DMA.

#include <cstddef>
#include <string>

namespace kubeaccel::agent {

// Pins host pages so that an engine copies straight between them and its
// device (cudaHostRegister for a CUDA engine), with no staging copy. A slot's
// ShmRegistry pins each region it maps and unpins it when the last request
// using the region is done, before unmapping it. Thread-safe.
class HostMemoryPinner {
 public:
  virtual ~HostMemoryPinner() = default;
  // Pins [ptr, ptr + bytes) (page-aligned). Returns "" on success, else why
  // the pages stay unpinned (the region still works, through staging copies).
  // `unavailable` is set when the engine has nothing to pin for (no GPU), so
  // that the caller need not log it as a problem.
  virtual std::string pin(void* ptr, size_t bytes, bool* unavailable) = 0;
  // Unpins what pin(ptr, ...) pinned.
  virtual void unpin(void* ptr) = 0;
};

}  // namespace kubeaccel::agent
