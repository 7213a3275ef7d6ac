#include "shm/shm_registry.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "shm/sigbus_guard.hpp"

namespace kubeaccel::agent {
namespace {

constexpr size_t kMaxKeyBytes = 255;  // NAME_MAX

// A closing file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

// 'text' for messages: quoted, non-printable bytes as \xNN, long text cut.
std::string quote(const std::string& s) {
  std::string out = "'";
  size_t n = 0;
  for (unsigned char c : s) {
    if (++n > 80) {
      out += "...";
      break;
    }
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "'";
}

std::string keyPrefix(const std::string& key) { return "shared memory key " + quote(key) + ": "; }

const char* kindOf(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

grpc::Status errnoStatus(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
      return {grpc::StatusCode::PERMISSION_DENIED, msg};
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, msg};
    default:
      return {grpc::StatusCode::INTERNAL, msg};
  }
}

size_t pageSize() {
  static const size_t size = [] {
    long p = ::sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<size_t>(p) : size_t{4096};
  }();
  return size;
}

}  // namespace

// One mmap of a region's file; unmapped when the last Region or ShmView lets go.
struct ShmRegistry::Mapping {
  void* base = nullptr;
  size_t length = 0;
  int guard = -1;  // sigbus entry
  HostMemoryPinner* pinnedBy = nullptr;  // set once pinned: unpinned before unmapping
  Mapping(void* b, size_t l, int g) : base(b), length(l), guard(g) {}
  ~Mapping() {
    if (pinnedBy) pinnedBy->unpin(base);
    sigbus::release(guard);  // before munmap: the address range may be reused at once
    ::munmap(base, length);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
};

ShmRegistry::ShmRegistry(std::string slotDir, size_t maxRegions, uint64_t maxBytes, HostMemoryPinner* pinner)
    : slotDir_(std::move(slotDir)), maxRegions_(maxRegions), maxBytes_(maxBytes), pinner_(pinner) {}

ShmRegistry::~ShmRegistry() = default;

grpc::Status ShmRegistry::openAndMap(const std::string& key, uint64_t offset, uint64_t byteSize, Region* out) const {
  const std::string prefix = keyPrefix(key);
  if (key.empty() || key == "." || key == ".." || key.find('/') != std::string::npos ||
      key.find('\0') != std::string::npos || key.size() > kMaxKeyBytes)
    return {grpc::StatusCode::INVALID_ARGUMENT,
            prefix + "expected the name of a file in the slot directory (one file name of 1 to 255 bytes, "
                     "no '/', not '.' or '..')"};

  Fd dir(::open(slotDir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.ok()) return errnoStatus(errno, "slot directory " + quote(slotDir_) + " cannot be opened");

  // O_PATH: nothing is opened for I/O yet, so a device node or FIFO has no side effect; with
  // O_NOFOLLOW a symlink gives a descriptor of the link itself.
  Fd path(::openat(dir.get(), key.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!path.ok()) {
    int err = errno;
    if (err == ENOENT)
      return {grpc::StatusCode::NOT_FOUND,
              prefix + "expected the name of a file in the slot directory, but there is no such file"};
    return errnoStatus(err, prefix + "cannot be opened");
  }
  struct stat st {};
  if (::fstat(path.get(), &st) != 0) return errnoStatus(errno, prefix + "cannot be examined");
  if (!S_ISREG(st.st_mode))
    return {grpc::StatusCode::INVALID_ARGUMENT,
            prefix + "expected a regular file in the slot directory, but it is " + kindOf(st.st_mode)};

  // Reopen the very inode read-write (the magic link does not resolve the name again).
  const std::string self = "/proc/self/fd/" + std::to_string(path.get());
  Fd file(::open(self.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!file.ok()) return errnoStatus(errno, prefix + "cannot be opened read-write");
  struct stat fst {};
  if (::fstat(file.get(), &fst) != 0) return errnoStatus(errno, prefix + "cannot be examined");
  if (fst.st_dev != st.st_dev || fst.st_ino != st.st_ino || !S_ISREG(fst.st_mode))
    return {grpc::StatusCode::INTERNAL, prefix + "changed while being opened"};
  if (fst.st_nlink != 1)
    return {grpc::StatusCode::INVALID_ARGUMENT,
            prefix + "expected a regular file with a single link, but it has " + std::to_string(fst.st_nlink) +
                " (hard links are refused)"};

  const uint64_t fileSize = static_cast<uint64_t>(fst.st_size);  // st_size >= 0 for a regular file
  if (byteSize == 0 || byteSize > fileSize || offset > fileSize - byteSize)
    return {grpc::StatusCode::INVALID_ARGUMENT,
            prefix + "expected offset + byte_size within the file and byte_size > 0, but offset " +
                std::to_string(offset) + " + byte_size " + std::to_string(byteSize) + " and the file has " +
                std::to_string(fileSize) + " bytes"};

  const uint64_t page = pageSize();
  const uint64_t mapOffset = offset - offset % page;
  const uint64_t delta = offset - mapOffset;
  const uint64_t length = delta + byteSize;  // <= fileSize < 2^63: no overflow
  if (length > SIZE_MAX)
    return {grpc::StatusCode::INVALID_ARGUMENT, prefix + "region too large to map on this machine"};
  void* base = ::mmap(nullptr, static_cast<size_t>(length), PROT_READ | PROT_WRITE, MAP_SHARED, file.get(),
                      static_cast<off_t>(mapOffset));
  if (base == MAP_FAILED) {
    int err = errno;
    if (err == ENODEV)
      return {grpc::StatusCode::INVALID_ARGUMENT,
              prefix + "expected a file that can be memory-mapped, but its filesystem cannot map it"};
    return errnoStatus(err, prefix + "cannot be mapped");
  }
  int guard = sigbus::protect(base, static_cast<size_t>(length));
  if (guard < 0) {
    ::munmap(base, static_cast<size_t>(length));
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            prefix + "the agent has too many shared memory mappings (at most " +
                std::to_string(sigbus::kTableSize) + " over all slots)"};
  }
  out->mapping = std::make_shared<Mapping>(base, static_cast<size_t>(length), guard);
  out->start = static_cast<std::byte*>(base) + delta;
  return grpc::Status::OK;
}

grpc::Status ShmRegistry::registerRegion(const std::string& name, const std::string& key, uint64_t offset,
                                         uint64_t byteSize) {
  if (name.empty() || name.size() > kMaxNameBytes)
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "shared memory region name " + quote(name) + ": expected 1 to " + std::to_string(kMaxNameBytes) +
                " bytes"};
  auto capCheck = [&](bool mapped) -> grpc::Status {
    if (regions_.count(name) != 0)
      return {grpc::StatusCode::ALREADY_EXISTS,
              "shared memory region " + quote(name) + " is already registered; unregister it first"};
    if (regions_.size() >= maxRegions_)
      return {grpc::StatusCode::RESOURCE_EXHAUSTED,
              "shared memory region " + quote(name) + ": at most " + std::to_string(maxRegions_) +
                  " regions may be registered per slot (the agent's --max-regions)"};
    if (mapped && byteSize > maxBytes_ - mappedBytes_)
      return {grpc::StatusCode::RESOURCE_EXHAUSTED,
              "shared memory region " + quote(name) + ": byte_size " + std::to_string(byteSize) +
                  " would exceed the slot's limit of " + std::to_string(maxBytes_) + " registered bytes (" +
                  std::to_string(mappedBytes_) + " in use; the agent's --max-region-bytes)"};
    return grpc::Status::OK;
  };
  {
    std::lock_guard lock(mu_);
    if (grpc::Status s = capCheck(false); !s.ok()) return s;
  }
  // Open and map without the lock (file system calls may be slow), then check again and insert.
  Region region;
  if (grpc::Status s = openAndMap(key, offset, byteSize, &region); !s.ok()) return s;
  region.info = ShmRegionInfo{name, key, offset, byteSize};
  if (pinner_) pin(*region.mapping, name);
  std::lock_guard lock(mu_);
  if (grpc::Status s = capCheck(true); !s.ok()) return s;  // the mapping is released on return
  mappedBytes_ += byteSize;
  regions_.emplace(name, std::move(region));
  return grpc::Status::OK;
}

void ShmRegistry::pin(Mapping& m, const std::string& name) const {
  bool unavailable = false;
  std::string why = pinner_->pin(m.base, m.length, &unavailable);
  if (why.empty()) {
    m.pinnedBy = pinner_;
    spdlog::debug("shared memory region {}: {} bytes pinned for the device", quote(name), m.length);
  } else if (unavailable) {
    spdlog::debug("shared memory region {}: not pinned: {}", quote(name), why);
  } else {
    spdlog::warn("shared memory region {}: not pinned ({}); its copies to and from the device go through staging",
                 quote(name), why);
  }
}

grpc::Status ShmRegistry::unregisterRegion(const std::string& name) {
  std::map<std::string, Region> dropped;  // unmapped after the lock is released
  std::lock_guard lock(mu_);
  if (name.empty()) {
    dropped.swap(regions_);
    mappedBytes_ = 0;
    return grpc::Status::OK;
  }
  auto it = regions_.find(name);
  if (it == regions_.end())
    return {grpc::StatusCode::NOT_FOUND, "shared memory region " + quote(name) + " is not registered"};
  mappedBytes_ -= it->second.info.byteSize;
  dropped.insert(regions_.extract(it));
  return grpc::Status::OK;
}

grpc::Status ShmRegistry::status(const std::string& name, std::vector<ShmRegionInfo>* out) const {
  out->clear();
  std::lock_guard lock(mu_);
  if (name.empty()) {
    out->reserve(regions_.size());
    for (const auto& [_, r] : regions_) out->push_back(r.info);
    return grpc::Status::OK;
  }
  auto it = regions_.find(name);
  if (it == regions_.end())
    return {grpc::StatusCode::NOT_FOUND, "shared memory region " + quote(name) + " is not registered"};
  out->push_back(it->second.info);
  return grpc::Status::OK;
}

grpc::Status ShmRegistry::view(const std::string& name, uint64_t offset, uint64_t byteSize, ShmView* out) const {
  std::shared_ptr<Mapping> mapping;
  std::byte* start = nullptr;
  uint64_t regionSize = 0;
  {
    std::lock_guard lock(mu_);
    auto it = regions_.find(name);
    if (it == regions_.end())
      return {grpc::StatusCode::NOT_FOUND, "shared memory region " + quote(name) + " is not registered"};
    mapping = it->second.mapping;
    start = it->second.start;
    regionSize = it->second.info.byteSize;
  }
  if (offset > regionSize || byteSize > regionSize - offset)
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "shared memory region " + quote(name) + ": expected offset + byte_size within the region's " +
                std::to_string(regionSize) + " bytes, but offset " + std::to_string(offset) + " + byte_size " +
                std::to_string(byteSize) + " is past its end"};
  if (sigbus::poisoned(mapping->guard))
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "shared memory region " + quote(name) +
                ": its file was truncated below the registered size; unregister and register it again"};
  out->bytes = std::span<std::byte>(start + offset, static_cast<size_t>(byteSize));
  out->pinned = mapping->pinnedBy != nullptr;  // set before the region was listed
  out->mapping = std::move(mapping);
  return grpc::Status::OK;
}

size_t ShmRegistry::size() const {
  std::lock_guard lock(mu_);
  return regions_.size();
}

bool ShmRegistry::truncated(const ShmView& v) {
  if (!v.mapping) return false;
  return sigbus::poisoned(static_cast<const Mapping*>(v.mapping.get())->guard);
}

}  // namespace kubeaccel::agent
