// libFuzzer target: a slot's shared-memory registry (register, view,
// unregister, status) under any sequence of calls, names, keys, offsets and
// sizes, including files truncated while mapped.
//
// Input: a script read with FuzzedDataProvider: an operation number, then its
// arguments. Keys come from a slot directory holding a regular file of each
// interesting size, a sparse large file, a symlink, a hard link, a directory
// and a FIFO, or are fuzzed strings. Invariants: a view that comes back is
// inside its registered region and inside the file, and every byte of it can
// be read and written; a refusal always says why.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "shm/shm_registry.hpp"

namespace {

using kubeaccel::agent::ShmRegistry;
using kubeaccel::agent::ShmView;

[[noreturn]] void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "invariant broken: %s: %s\n", what, detail.c_str());
  std::abort();
}

const std::string& slotDir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/kubeaccel-fuzz-shm-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    return std::string(tmpl);
  }();
  return dir;
}

// Files of these sizes are (re)made before each input, so a truncation by one
// input does not leak into the next.
constexpr const char* kFiles[] = {"f0", "f1", "f4095", "f4096", "f4097", "f65536"};
constexpr off_t kSizes[] = {0, 1, 4095, 4096, 4097, 65536};

void resetSlotDir() {
  const std::string& d = slotDir();
  for (size_t i = 0; i < std::size(kFiles); ++i) {
    std::string p = d + "/" + kFiles[i];
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ::ftruncate(fd, kSizes[i]) != 0) std::abort();
    ::close(fd);
  }
  static bool once = [&] {
    int fd = ::open((d + "/sparse").c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ::ftruncate(fd, (off_t{1} << 40) + 3) != 0) std::abort();  // 1 TiB + 3, no blocks
    ::close(fd);
    if (::symlink("f4096", (d + "/link").c_str()) != 0) std::abort();
    ::close(::open((d + "/h1").c_str(), O_RDWR | O_CREAT, 0600));
    if (::truncate((d + "/h1").c_str(), 4096) != 0 || ::link((d + "/h1").c_str(), (d + "/h2").c_str()) != 0)
      std::abort();
    if (::mkdir((d + "/dir").c_str(), 0700) != 0 || ::mkfifo((d + "/fifo").c_str(), 0600) != 0) std::abort();
    return true;
  }();
  (void)once;
}

std::string pickKey(FuzzedDataProvider& in) {
  static const char* keys[] = {"f0",   "f1",  "f4095", "f4096", "f4097", "f65536", "sparse", "link", "h1",
                               "dir",  "fifo", "",     ".",     "..",    "../x",   "/etc/passwd", "nothere"};
  if (in.ConsumeBool()) return keys[in.ConsumeIntegralInRange<size_t>(0, std::size(keys) - 1)];
  return in.ConsumeRandomLengthString(300);
}

std::string pickName(FuzzedDataProvider& in) {
  static const char* names[] = {"a", "b", "c", ""};
  if (in.ConsumeBool()) return names[in.ConsumeIntegralInRange<size_t>(0, std::size(names) - 1)];
  return in.ConsumeRandomLengthString(300);
}

// Offsets and sizes near the edges that matter (0, page, file sizes, 2^63, 2^64).
uint64_t pickNumber(FuzzedDataProvider& in) {
  static const uint64_t edges[] = {0, 1, 3, 4, 4095, 4096, 4097, 65535, 65536, (uint64_t{1} << 40) + 3,
                                   uint64_t{1} << 63, (uint64_t{1} << 63) - 1, UINT64_MAX, UINT64_MAX - 4095};
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0: return edges[in.ConsumeIntegralInRange<size_t>(0, std::size(edges) - 1)];
    case 1: return in.ConsumeIntegralInRange<uint64_t>(0, 70000);
    default: return in.ConsumeIntegral<uint64_t>();
  }
}

void expectReason(const grpc::Status& s, const char* op) {
  if (!s.ok() && s.error_message().empty()) broken(op, "a refusal without a message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  resetSlotDir();
  FuzzedDataProvider in(data, size);
  ShmRegistry reg(slotDir());
  std::vector<ShmView> held;  // views kept across unregister, as a request in flight keeps them
  for (int ops = 0; ops < 32 && in.remaining_bytes() > 0; ++ops) {
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
      case 0: {
        std::string name = pickName(in), key = pickKey(in);
        uint64_t offset = pickNumber(in), bytes = pickNumber(in);
        expectReason(reg.registerRegion(name, key, offset, bytes), "register");
        break;
      }
      case 1: {
        std::string name = pickName(in);
        uint64_t offset = pickNumber(in), bytes = pickNumber(in);
        ShmView v;
        grpc::Status s = reg.view(name, offset, bytes, &v);
        expectReason(s, "view");
        if (!s.ok()) break;
        std::vector<kubeaccel::agent::ShmRegionInfo> info;
        if (!reg.status(name, &info).ok() || info.size() != 1) broken("view of an unknown region", name);
        if (offset > info[0].byteSize || v.bytes.size() != bytes || bytes > info[0].byteSize - offset)
          broken("view outside its region", name);
        if (!v.bytes.empty()) {  // readable and writable at both ends (a fault or ASan says otherwise)
          v.bytes.front() = v.bytes.front() ^ std::byte{0};
          v.bytes.back() = v.bytes.back() ^ std::byte{0};
        }
        if (held.size() < 8) held.push_back(std::move(v));
        break;
      }
      case 2:
        expectReason(reg.unregisterRegion(pickName(in)), "unregister");
        break;
      case 3: {
        std::vector<kubeaccel::agent::ShmRegionInfo> info;
        expectReason(reg.status(pickName(in), &info), "status");
        break;
      }
      case 4: {  // the client shrinks a file that may be mapped
        size_t i = in.ConsumeIntegralInRange<size_t>(0, std::size(kFiles) - 1);
        if (::truncate((slotDir() + "/" + kFiles[i]).c_str(), in.ConsumeIntegralInRange<off_t>(0, kSizes[i])) != 0)
          std::abort();
        break;
      }
      default:  // a request that used a view touches it after a truncation
        for (auto& v : held)
          if (!v.bytes.empty()) {
            volatile std::byte b = v.bytes[v.bytes.size() / 2];
            (void)b;
            (void)ShmRegistry::truncated(v);
          }
        break;
    }
  }
  return 0;
}
