#pragma once
// Tells the agent that an agent-mode slot goes to a new pod, so that the pod
// starts with an empty slot: no files, regions or statistics of the last one
// (issue 10, section 4). Called from Allocate, before the kubelet starts the
// container; the agent answers once the slot is empty.

#include <chrono>
#include <string>

#include <grpcpp/support/status.h>

namespace kubeaccel {

// Calls kubeaccel.admin.v1.SlotAdmin/HandOverSlot on <agentDir>/admin.sock.
// OK once the agent emptied slot `slot` of device `deviceId`; otherwise the
// status says why (the agent unreachable, or what it could not remove).
grpc::Status handOverSlot(const std::string& agentDir, const std::string& className, const std::string& deviceId,
                          int slot, std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace kubeaccel
