#include "gpu/nvml.hpp"

#include <dlfcn.h>

#include <mutex>

namespace kubeaccel::gpu {
namespace {

// The few NVML entry points used, declared from NVML's public API reference
// (nvml.h is not in Debian's main archive). Every call returns nvmlReturn_t,
// 0 being NVML_SUCCESS.
using NvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlMemory {  // nvmlMemory_t
  unsigned long long total, free, used;
};
struct NvmlUtilization {  // nvmlUtilization_t
  unsigned int gpu, memory;
};
using InitFn = int (*)();
using ByBusIdFn = int (*)(const char*, NvmlDevice*);
using MemoryFn = int (*)(NvmlDevice, NvmlMemory*);
using UtilizationFn = int (*)(NvmlDevice, NvmlUtilization*);
using ErrorStringFn = const char* (*)(int);

struct Nvml {
  std::string problem;  // why it is unusable; empty when usable
  ByBusIdFn byBusId = nullptr;
  MemoryFn memory = nullptr;
  UtilizationFn utilization = nullptr;
  ErrorStringFn errorString = nullptr;

  std::string error(int rc) const {
    const char* s = errorString ? errorString(rc) : nullptr;
    return s ? s : "NVML error " + std::to_string(rc);
  }
};

const Nvml& nvml() {
  static Nvml n;
  static std::once_flag once;
  std::call_once(once, [] {
    // Never dlclose'd: the driver's library keeps threads of its own.
    void* h = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      n.problem = "NVML (libnvidia-ml.so.1, from the NVIDIA driver) is not available";
      return;
    }
    auto init = reinterpret_cast<InitFn>(::dlsym(h, "nvmlInit_v2"));
    n.byBusId = reinterpret_cast<ByBusIdFn>(::dlsym(h, "nvmlDeviceGetHandleByPciBusId_v2"));
    n.memory = reinterpret_cast<MemoryFn>(::dlsym(h, "nvmlDeviceGetMemoryInfo"));
    n.utilization = reinterpret_cast<UtilizationFn>(::dlsym(h, "nvmlDeviceGetUtilizationRates"));
    n.errorString = reinterpret_cast<ErrorStringFn>(::dlsym(h, "nvmlErrorString"));
    if (!init || !n.byBusId || !n.memory || !n.utilization) {
      n.problem = "libnvidia-ml.so.1 lacks the NVML calls kubeaccel uses";
      return;
    }
    if (int rc = init(); rc != 0) n.problem = "nvmlInit: " + n.error(rc);
  });
  return n;
}

}  // namespace

std::optional<GpuUsage> usageOf(const std::string& pciBusId, std::string* why) {
  const Nvml& n = nvml();
  auto fail = [&](const std::string& reason) -> std::optional<GpuUsage> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (!n.problem.empty()) return fail(n.problem);
  NvmlDevice dev = nullptr;
  if (int rc = n.byBusId(pciBusId.c_str(), &dev); rc != 0) return fail("NVML: no GPU at " + pciBusId + ": " + n.error(rc));
  NvmlMemory mem{};
  if (int rc = n.memory(dev, &mem); rc != 0) return fail("NVML memory of " + pciBusId + ": " + n.error(rc));
  NvmlUtilization util{};
  if (int rc = n.utilization(dev, &util); rc != 0) return fail("NVML utilization of " + pciBusId + ": " + n.error(rc));
  return GpuUsage{mem.used, mem.total, util.gpu};
}

}  // namespace kubeaccel::gpu
