#pragma once
// What the NVIDIA driver says of a GPU's use, through NVML
// (libnvidia-ml.so.1, which comes with the driver), loaded at run time so that
// nothing links against it: without a driver there are no figures, never
// made-up ones.

#include <cstdint>
#include <optional>
#include <string>

namespace kubeaccel::gpu {

struct GpuUsage {
  uint64_t memoryUsedBytes = 0;
  uint64_t memoryTotalBytes = 0;
  unsigned utilizationPercent = 0;  // kernels running, over NVML's last sample period (0-100)
};

// The usage of the GPU at `pciBusId` ("0000:3b:00.0"), or nullopt with
// `*why` set when NVML is absent (no driver), cannot start, or knows no GPU
// there. Thread-safe; NVML is loaded and initialised once, on first use.
std::optional<GpuUsage> usageOf(const std::string& pciBusId, std::string* why = nullptr);

}  // namespace kubeaccel::gpu
