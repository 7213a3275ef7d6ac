#pragma once
// A worker's host memory for joining a batch's inputs. Pinned for the
// device's DMA when the backend pins memory (kubeaccel_backend.h
// pin_host_memory; cudaHostRegister for the torch backend on CUDA), so that
// the engine copies a joined batch to the GPU asynchronously and without a
// staging copy, as it does a pod's pinned shared-memory region.

#include <cstddef>
#include <span>

#include "shm/host_memory_pinner.hpp"

namespace kubeaccel::agent {

class BatchBuffer {
 public:
  // `pinner`: null when the backend pins nothing; must outlive the buffer.
  explicit BatchBuffer(HostMemoryPinner* pinner) : pinner_(pinner) {}
  ~BatchBuffer() { release(); }
  BatchBuffer(const BatchBuffer&) = delete;
  BatchBuffer& operator=(const BatchBuffer&) = delete;

  // At least `bytes` bytes, page-aligned; valid until the next call (the
  // memory is reused from batch to batch, so a run must be over before the
  // next batch is joined). `pin`: for a model on a GPU; memory that was not
  // pinned is not reused for it. A failed pin leaves the memory usable,
  // unpinned, and is logged once. Throws std::bad_alloc.
  std::span<std::byte> reserve(size_t bytes, bool pin);
  bool pinned() const { return pinned_; }
  // After a run: only pinned memory of at most kMaxKeptBytes is kept for the
  // next batch (pinning costs more than the copy it saves on one batch);
  // anything else goes back to the system, as a batch's own vectors would.
  void runEnded() {
    if (!pinned_ || size_ > kMaxKeptBytes) release();
  }
  static constexpr size_t kMaxKeptBytes = size_t{256} << 20;

 private:
  void release();
  HostMemoryPinner* pinner_;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool pinned_ = false;
  bool pinFailureLogged_ = false;
};

}  // namespace kubeaccel::agent
