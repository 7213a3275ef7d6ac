#include "scheduler/batch_buffer.hpp"

#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <new>
#include <string>

namespace kubeaccel::agent {

std::span<std::byte> BatchBuffer::reserve(size_t bytes, bool pin) {
  if (bytes <= size_ && (pinned_ || !pin || !pinner_)) return {data_, size_};
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (bytes > SIZE_MAX - page) throw std::bad_alloc();
  const size_t size = std::max<size_t>((bytes + page - 1) / page * page, page);
  release();
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<std::byte*>(p);
  size_ = size;
  if (pin && pinner_) {
    bool unavailable = false;
    std::string why = pinner_->pin(data_, size_, &unavailable);
    pinned_ = why.empty();
    if (!pinned_ && !unavailable && !pinFailureLogged_) {
      spdlog::info("a batch buffer of {} bytes is not pinned, so batches reach the device through staging copies: {}",
                   size_, why);
      pinFailureLogged_ = true;
    }
  }
  return {data_, size_};
}

void BatchBuffer::release() {
  if (!data_) return;
  if (pinned_) pinner_->unpin(data_);
  ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
  pinned_ = false;
}

}  // namespace kubeaccel::agent
