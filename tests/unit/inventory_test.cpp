#include <gtest/gtest.h>

#include "discovery/inventory.hpp"

namespace kubeaccel {
namespace {

using namespace std::chrono_literals;
using Clock = Inventory::Clock;

Device stick(const std::string& id, const std::string& syspath, const std::string& port = "1-3") {
  Device d;
  d.className = "movidius-ncs2";
  d.id = id;
  d.syspath = syspath;
  d.subsystem = "usb";
  d.portKey = port;
  d.members = {syspath};
  return d;
}

Device card(const std::string& addr) {
  Device d;
  d.className = "coral-pcie";
  d.id = addr;
  d.syspath = "/sys/devices/pci0000:00/" + addr;
  d.subsystem = "pci";
  d.portKey = addr;
  d.members = {d.syspath};
  return d;
}

TEST(Inventory, NonReenumeratingDeviceTurnsUnhealthyAtOnceThenDrops) {
  Inventory inv(3000ms);
  auto t0 = Clock::now();
  EXPECT_TRUE(inv.upsert(card("0000-03-00.0"), t0));
  EXPECT_TRUE(inv.remove("/sys/devices/pci0000:00/0000-03-00.0", false, t0));
  ASSERT_EQ(inv.snapshot().size(), 1u);
  EXPECT_FALSE(inv.snapshot()[0].healthy);
  EXPECT_EQ(inv.nextExpiry(), t0 + 3000ms);
  EXPECT_FALSE(inv.expire(t0 + 2999ms));
  EXPECT_TRUE(inv.expire(t0 + 3000ms));
  EXPECT_TRUE(inv.snapshot().empty());
  EXPECT_FALSE(inv.nextExpiry());
}

TEST(Inventory, ReturningDeviceIsHealthyAgain) {
  Inventory inv(3000ms);
  auto t0 = Clock::now();
  inv.upsert(card("0000-03-00.0"), t0);
  inv.remove("/sys/devices/pci0000:00/0000-03-00.0", false, t0);
  EXPECT_TRUE(inv.upsert(card("0000-03-00.0"), t0 + 1s));
  ASSERT_EQ(inv.snapshot().size(), 1u);
  EXPECT_TRUE(inv.snapshot()[0].healthy);
  EXPECT_FALSE(inv.expire(t0 + 10s));  // present again: never dropped
}

TEST(Inventory, ReenumerationKeepsIdAndHealthInsideTheWindow) {
  Inventory inv(3000ms);
  auto t0 = Clock::now();
  // An unbooted NCS2 boots and comes back on the socket's USB 3 half, with a serial.
  inv.upsert(stick("usb-1-3", "/sys/devices/usb1/1-3"), t0);
  EXPECT_FALSE(inv.remove("/sys/devices/usb1/1-3", true, t0 + 10ms));  // nothing visible changes
  ASSERT_EQ(inv.snapshot().size(), 1u);
  EXPECT_TRUE(inv.snapshot()[0].healthy);
  Device booted = stick("usb-1-3", "/sys/devices/usb2/2-1");
  booted.serial = "SERIAL42";
  booted.product = "f63b";
  inv.upsert(booted, t0 + 900ms);
  auto snap = inv.snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].device.id, "usb-1-3");
  EXPECT_EQ(snap[0].device.product, "f63b");
  EXPECT_TRUE(snap[0].healthy);
}

TEST(Inventory, DeviceInAnotherPortIsANewDevice) {
  Inventory inv(3000ms);
  auto t0 = Clock::now();
  inv.upsert(stick("usb-1-3", "/sys/devices/usb1/1-3"), t0);
  inv.remove("/sys/devices/usb1/1-3", true, t0);
  inv.upsert(stick("usb-1-4", "/sys/devices/usb1/1-4", "1-4"), t0 + 100ms);
  EXPECT_EQ(inv.snapshot().size(), 2u);
  EXPECT_TRUE(inv.expire(t0 + 3s));
  ASSERT_EQ(inv.snapshot().size(), 1u);
  EXPECT_EQ(inv.snapshot()[0].device.id, "usb-1-4");
}

TEST(Inventory, Owner) {
  Inventory inv(3000ms);
  inv.upsert(stick("usb-1-3", "/sys/devices/usb1/1-3"), Clock::now());
  EXPECT_EQ(inv.ownerOf("/sys/devices/usb1/1-3/1-3:1.0"), "/sys/devices/usb1/1-3");
  EXPECT_FALSE(inv.ownerOf("/sys/devices/usb1/1-30"));
  EXPECT_NE(inv.presentAt("/sys/devices/usb1/1-3"), nullptr);
}

TEST(Inventory, StormSettlesToTheLastState) {
  Inventory inv(3000ms);
  auto t = Clock::now();
  for (int i = 0; i < 50; ++i) {
    inv.upsert(card("0000-03-00.0"), t);
    inv.remove("/sys/devices/pci0000:00/0000-03-00.0", false, t);
    t += 10ms;
  }
  inv.upsert(card("0000-03-00.0"), t);
  auto snap = inv.snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_TRUE(snap[0].healthy);
}

// Issue 8, case 3: a device with a problem (no device node) is Unhealthy, and
// Healthy again once it is gone.
TEST(Inventory, ADeviceWithAProblemIsUnhealthyUntilItIsFixed) {
  Inventory inv(3000ms);
  auto t0 = Clock::now();
  inv.upsert(card("0000-03-00.0"), t0);
  Device unbound = card("0000-03-00.0");
  unbound.problem = "no device node of subsystem apex: no driver is bound to 0000:03:00.0";
  EXPECT_TRUE(inv.upsert(unbound, t0 + 1s));
  EXPECT_FALSE(inv.snapshot()[0].healthy);
  EXPECT_TRUE(inv.upsert(card("0000-03-00.0"), t0 + 2s));
  EXPECT_TRUE(inv.snapshot()[0].healthy);
}

// A function read as part of a card before it turned out to be a virtual
// function (its physfn link came after its "add"): once it is a device of its
// own, the card that claimed it is to be read again.
TEST(Inventory, DevicesThatClaimedAnotherOnesMemberAreToBeReadAgain) {
  Inventory inv(3000ms);
  auto t0 = Clock::now();
  Device alveo = card("0000:af:00.0");
  alveo.id = "0000-af-00.0";
  alveo.members = {"/sys/devices/pci0000:ae/0000:af:00.0", "/sys/devices/pci0000:ae/0000:af:00.1",
                   "/sys/devices/pci0000:ae/0000:af:00.4"};
  alveo.syspath = alveo.members[0];
  inv.upsert(alveo, t0);
  Device vf = card("0000:af:00.4");
  vf.id = "0000-af-00.4";
  vf.syspath = alveo.members[2];
  vf.members = {vf.syspath};
  EXPECT_EQ(inv.overlapping(vf), std::vector<std::string>{alveo.syspath});
  EXPECT_TRUE(inv.overlapping(alveo).empty()) << "a device never overlaps itself";
  Device other = vf;
  other.className = "another-class";
  EXPECT_TRUE(inv.overlapping(other).empty()) << "only devices of the same class";
}

TEST(Inventory, TwoClassesMayUseOnePlaceInTurn) {
  Inventory inv(3000ms);
  auto t0 = Clock::now();
  inv.upsert(stick("usb-1-3", "/sys/devices/usb1/1-3"), t0);
  inv.remove("/sys/devices/usb1/1-3", true, t0);
  Device ncs = stick("usb-1-3", "/sys/devices/usb1/1-3");
  ncs.className = "movidius-ncs";
  inv.upsert(ncs, t0 + 100ms);
  auto snap = inv.snapshot();
  ASSERT_EQ(snap.size(), 2u) << "the NCS2 keeps its window; the NCS is a device of its own";
  EXPECT_EQ(snap[0].device.className, "movidius-ncs");
  EXPECT_EQ(snap[1].device.className, "movidius-ncs2");
}

}  // namespace
}  // namespace kubeaccel
