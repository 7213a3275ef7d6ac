#include <gtest/gtest.h>

#include "container_allocation.hpp"

namespace kubeaccel {
namespace {

AdvertisedDevice slot(const std::string& dev, int k) {
  AdvertisedDevice a;
  a.physicalId = dev;
  a.slot = k;
  a.id = dev + "-s" + std::to_string(k);
  return a;
}

TEST(ContainerAllocation, AgentModeMountsTheSlotDirectory) {
  DeviceClass cls;
  cls.name = "movidius-ncs2";
  cls.mode = Mode::Agent;
  AdvertisedDevice s = slot("usb-1-3", 2);
  auto r = containerAllocation(cls, {&s}, {"/var/lib/kubeaccel/agent"});
  ASSERT_EQ(r.mounts_size(), 2);
  EXPECT_EQ(r.mounts(0).host_path(), "/var/lib/kubeaccel/agent/movidius-ncs2/usb-1-3/s2");
  EXPECT_EQ(r.mounts(0).container_path(), "/run/kubeaccel");
  // Issue 10, section 1: the socket's directory is read-only in the pod (even
  // root in the container cannot delete the socket); only shm/ is writable.
  EXPECT_TRUE(r.mounts(0).read_only());
  EXPECT_EQ(r.mounts(1).host_path(), "/var/lib/kubeaccel/agent/movidius-ncs2/usb-1-3/s2/shm");
  EXPECT_EQ(r.mounts(1).container_path(), "/run/kubeaccel/shm");
  EXPECT_FALSE(r.mounts(1).read_only());
  EXPECT_EQ(r.devices_size(), 0);
  EXPECT_EQ(r.envs().at("KUBEACCEL_INFERENCE_SOCKET"), "unix:///run/kubeaccel/inference.sock");
  EXPECT_EQ(r.envs().at("KUBEACCEL_DEVICE_ID"), "usb-1-3-s2");
}

TEST(ContainerAllocation, SeveralSlotsGetSeveralMounts) {
  DeviceClass cls;
  cls.name = "coral-usb";
  cls.mode = Mode::Agent;
  AdvertisedDevice a = slot("X", 0), b = slot("Y", 1);
  auto r = containerAllocation(cls, {&a, &b}, {"/agent"});
  ASSERT_EQ(r.mounts_size(), 4);  // each slot: its directory and its shm/
  EXPECT_EQ(r.mounts(2).host_path(), "/agent/coral-usb/Y/s1");
  EXPECT_EQ(r.mounts(2).container_path(), "/run/kubeaccel-1");
  EXPECT_EQ(r.mounts(3).container_path(), "/run/kubeaccel-1/shm");
  EXPECT_EQ(r.envs().at("KUBEACCEL_INFERENCE_SOCKETS"),
            "unix:///run/kubeaccel/inference.sock,unix:///run/kubeaccel-1/inference.sock");
  EXPECT_EQ(r.envs().at("KUBEACCEL_DEVICE_IDS"), "X-s0,Y-s1");
}

TEST(ContainerAllocation, DeviceModeGivesEveryNodeReadWrite) {
  DeviceClass cls;
  cls.name = "nvidia-gpu";
  AdvertisedDevice a, b;
  a.id = a.physicalId = "0000-3b-00.0";
  a.device.nodes = {"/dev/nvidia0", "/dev/nvidiactl"};
  b.id = b.physicalId = "0000-af-00.0";
  b.device.nodes = {"/dev/nvidia1", "/dev/nvidiactl"};
  auto r = containerAllocation(cls, {&a, &b}, {"/agent"});
  ASSERT_EQ(r.devices_size(), 3);  // the shared node once
  for (const auto& spec : r.devices()) {
    EXPECT_EQ(spec.container_path(), spec.host_path());
    EXPECT_EQ(spec.permissions(), "rw");
  }
  EXPECT_EQ(r.mounts_size(), 0);
  EXPECT_EQ(r.envs().at("KUBEACCEL_DEVICE_IDS"), "0000-3b-00.0,0000-af-00.0");
  EXPECT_EQ(r.envs().at("KUBEACCEL_DEVICE_NODES"), "/dev/nvidia0,/dev/nvidiactl,/dev/nvidia1");
}

}  // namespace
}  // namespace kubeaccel
