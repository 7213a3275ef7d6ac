#pragma once
// Register on the kubelet's kubelet.sock.

#include <chrono>
#include <string>

#include "deviceplugin/v1beta1/api.pb.h"

namespace kubeaccel {

inline constexpr const char* kDevicePluginApiVersion = "v1beta1";

// Returns an empty string on success, else why it failed.
std::string registerWithKubelet(const std::string& kubeletSocket, const std::string& endpoint,
                                const std::string& resourceName, const v1beta1::DevicePluginOptions& options,
                                std::chrono::milliseconds timeout);

}  // namespace kubeaccel
