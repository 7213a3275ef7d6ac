#include <gtest/gtest.h>

#include <map>

#include "container_allocation.hpp"
#include "slot_cdi_spec.hpp"

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

// Issue 10, section 5: with the slots' CDI spec in place, Allocate names each slot's CDI device
// for the place it takes in the container, beside the plain mounts (for runtimes without CDI).
TEST(ContainerAllocation, AgentModeNamesTheSlotsCdiDevices) {
  DeviceClass cls;
  cls.name = "coral-usb";
  cls.mode = Mode::Agent;
  AdvertisedDevice a = slot("X", 0), b = slot("Y", 1);
  auto r = containerAllocation(cls, {&a, &b}, {"/agent", "kubeaccel.io/coral-usb"});
  ASSERT_EQ(r.cdi_devices_size(), 2);
  EXPECT_EQ(r.cdi_devices(0).name(), "kubeaccel.io/coral-usb=X-s0");
  EXPECT_EQ(r.cdi_devices(1).name(), "kubeaccel.io/coral-usb=Y-s1.1");
  EXPECT_EQ(r.mounts_size(), 4);
  // No spec in place: no names (the kubelet would fail the pod on an unresolvable one).
  EXPECT_EQ(containerAllocation(cls, {&a}, {"/agent"}).cdi_devices_size(), 0);
}

// Each slot can be mounted at each place; each entry mounts the slot directory read-only and its
// shm/ read-write, both nosuid, nodev and noexec, so nothing a tenant writes runs setuid, as a
// device node or at all from there.
TEST(SlotCdiSpec, MountsEachSlotNosuidNodevNoexecAtEachPlace) {
  AdvertisedDevice a = slot("X", 0), b = slot("X", 1);
  nlohmann::json spec = slotCdiSpec("kubeaccel.io/coral-usb", "coral-usb", "/agent", {a, b});
  EXPECT_EQ(spec["cdiVersion"], "0.6.0");
  EXPECT_EQ(spec["kind"], "kubeaccel.io/coral-usb");
  ASSERT_EQ(spec["devices"].size(), 4u);
  std::map<std::string, nlohmann::json> byName;
  for (const auto& d : spec["devices"]) byName[d["name"].get<std::string>()] = d["containerEdits"];
  ASSERT_EQ(byName.count("X-s1"), 1u);
  ASSERT_EQ(byName.count("X-s1.1"), 1u);
  const auto& first = byName["X-s1"]["mounts"];
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0]["hostPath"], "/agent/coral-usb/X/s1");
  EXPECT_EQ(first[0]["containerPath"], "/run/kubeaccel");
  EXPECT_EQ(first[0]["type"], "bind");
  EXPECT_EQ(first[0]["options"], nlohmann::json({"ro", "rbind", "nosuid", "nodev", "noexec"}));
  EXPECT_EQ(first[1]["hostPath"], "/agent/coral-usb/X/s1/shm");
  EXPECT_EQ(first[1]["containerPath"], "/run/kubeaccel/shm");
  EXPECT_EQ(first[1]["options"], nlohmann::json({"rw", "rbind", "nosuid", "nodev", "noexec"}));
  EXPECT_EQ(byName["X-s1.1"]["mounts"][0]["containerPath"], "/run/kubeaccel-1");
  EXPECT_EQ(byName["X-s1.1"]["mounts"][1]["containerPath"], "/run/kubeaccel-1/shm");
  EXPECT_EQ(byName["X-s1.1"]["env"], nlohmann::json({"KUBEACCEL_CDI_DEVICE=X-s1.1"}));
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
