#pragma once
// The KServe v2 system-shared-memory regions of one slot.
//
// A region's key names a regular file directly inside the slot directory (the pod sees it under
// /run/kubeaccel). Rules, all checked on the file descriptor that is then mapped (no check-then-use
// window):
//   - the key is a single file name: not empty, not "." or "..", no '/', no NUL, at most 255 bytes;
//   - the entry is opened with openat(slot dir, key, O_PATH|O_NOFOLLOW) first, so a symlink (even
//     one pointing inside the slot) or a device node is never opened for I/O (opening a device
//     such as a watchdog can have side effects); it must be S_ISREG with exactly one link, and only
//     then is it reopened read-write through /proc/self/fd (same inode, verified);
//   - hard links are refused (st_nlink != 1). link() cannot cross mounts and the slot directory is
//     the pod's only view of this filesystem, so a link could only point at another file of the same
//     slot; refusing costs well-behaved clients nothing and removes the question;
//   - [offset, offset+byteSize) must lie within the file, byteSize > 0, overflow-safe.
// The file is mapped MAP_SHARED PROT_READ|PROT_WRITE from the page holding `offset` (mmap needs a
// page-aligned file offset; the region starts inside the first page) and the descriptor is closed,
// so a slot's regions cost no file descriptors.
//
// Status codes: INVALID_ARGUMENT for a bad name, key, offset or size, and for a key naming something
// that is not a plain file (symlink, directory, FIFO, socket, device, hard link); NOT_FOUND when the
// slot directory has no such entry; ALREADY_EXISTS for a taken name; RESOURCE_EXHAUSTED beyond
// kMaxRegions or kMaxMappedBytes; PERMISSION_DENIED when the agent may not open the file read-write
// (EACCES, EPERM, EROFS); INTERNAL for anything else the kernel refuses.
//
// Truncation: a client may shrink a file while it is mapped. A process-wide SIGBUS handler
// (sigbus_guard.hpp) then swaps the region's pages for zero pages instead of letting the agent die;
// view() of such a region answers FAILED_PRECONDITION and truncated() tells a request that used a
// view that its bytes are not the client's.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "shm/host_memory_pinner.hpp"

namespace kubeaccel::agent {

struct ShmRegionInfo {
  std::string name, key;
  uint64_t offset = 0, byteSize = 0;
};

// A mapped byte range of a registered region, kept alive by the shared_ptr even if the
// region is unregistered while a request still uses it.
struct ShmView {
  std::shared_ptr<void> mapping;  // owns the mmap
  std::span<std::byte> bytes;     // the requested range
  bool pinned = false;            // pinned for the device (HostMemoryPinner)
};

// The system shared memory regions of one slot. Thread-safe.
class ShmRegistry {
 public:
  // At most `maxRegions` regions and `maxBytes` registered bytes in all
  // (RESOURCE_EXHAUSTED beyond, naming the agent's flag). With a `pinner`
  // (the device's engine runs on a GPU), each region is pinned while mapped;
  // one that cannot be pinned still works (logged).
  explicit ShmRegistry(std::string slotDir, size_t maxRegions = kMaxRegions, uint64_t maxBytes = kMaxMappedBytes,
                       HostMemoryPinner* pinner = nullptr);
  ~ShmRegistry();
  ShmRegistry(const ShmRegistry&) = delete;
  ShmRegistry& operator=(const ShmRegistry&) = delete;

  // INVALID_ARGUMENT (bad name/key/offset/size, or the key is not a plain file: the message says what
  // was expected), ALREADY_EXISTS (name taken), NOT_FOUND (no such file in the slot dir),
  // RESOURCE_EXHAUSTED (caps), PERMISSION_DENIED (the agent may not open it read-write).
  grpc::Status registerRegion(const std::string& name, const std::string& key, uint64_t offset, uint64_t byteSize);
  // Empty name: every region. NOT_FOUND for an unknown name.
  grpc::Status unregisterRegion(const std::string& name);
  // Empty name: every region (sorted by name). NOT_FOUND for an unknown name.
  grpc::Status status(const std::string& name, std::vector<ShmRegionInfo>* out) const;
  // The range [offset, offset+byteSize) of region `name` (offset relative to the region). INVALID_ARGUMENT when
  // it falls outside the region (message names region, offset, size and the region's size), NOT_FOUND for an
  // unknown region, FAILED_PRECONDITION when the region's file was truncated while mapped. byteSize 0 at an
  // offset within the region gives an empty span.
  grpc::Status view(const std::string& name, uint64_t offset, uint64_t byteSize, ShmView* out) const;
  size_t size() const;

  // True when the file behind `v` (a view from view()) was truncated while mapped, so its bytes were
  // replaced by zeros: check after using a view to fail the request rather than answer from zeros.
  static bool truncated(const ShmView& v);

  // Default caps (the agent's --max-regions and --max-region-bytes): regions
  // per slot, and registered bytes per slot (address space and, since the
  // agent writes outputs there, disk: a sparse file can be huge).
  static constexpr size_t kMaxRegions = 64;
  static constexpr uint64_t kMaxMappedBytes = uint64_t{1} << 30;
  // Region names longer than this are refused (INVALID_ARGUMENT).
  static constexpr size_t kMaxNameBytes = 256;

 private:
  struct Mapping;
  struct Region {
    ShmRegionInfo info;
    std::shared_ptr<Mapping> mapping;
    std::byte* start = nullptr;  // the region's first byte inside the mapping
  };

  grpc::Status openAndMap(const std::string& key, uint64_t offset, uint64_t byteSize, Region* out) const;
  void pin(Mapping& m, const std::string& name) const;

  const std::string slotDir_;
  const size_t maxRegions_;
  const uint64_t maxBytes_;
  HostMemoryPinner* const pinner_;
  mutable std::mutex mu_;
  std::map<std::string, Region> regions_;
  uint64_t mappedBytes_ = 0;
};

}  // namespace kubeaccel::agent
