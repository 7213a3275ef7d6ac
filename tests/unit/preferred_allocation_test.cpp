#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>
#include <set>

#include "preferred_allocation.hpp"

namespace kubeaccel {
namespace {

// Free slots "<dev>-s<first>".."<dev>-s<first+count-1>" of physical device
// "<dev>" on `numa`; a `first` above 0 means the lower slots are in use.
void addSlots(std::vector<AllocationCandidate>& out, const std::string& dev, int first, int count, int numa) {
  for (int k = first; k < first + count; ++k) out.push_back({dev + "-s" + std::to_string(k), dev, numa});
}

// An idle physical device "<dev>" with `slots` slots on `numa`.
void addDevice(std::vector<AllocationCandidate>& out, const std::string& dev, int slots, int numa) {
  addSlots(out, dev, 0, slots, numa);
}

std::set<std::string> physicalOf(const std::vector<std::string>& ids) {
  std::set<std::string> out;
  for (const auto& id : ids) out.insert(id.substr(0, id.find("-s")));
  return out;
}

void expectValid(const std::vector<AllocationCandidate>& avail, const std::vector<std::string>& got, int size) {
  ASSERT_EQ(got.size(), static_cast<size_t>(size));
  std::set<std::string> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), got.size()) << "duplicates";
  for (const auto& id : got)
    EXPECT_TRUE(std::any_of(avail.begin(), avail.end(), [&](const auto& c) { return c.id == id; })) << id;
}

// The kubelet's side of a sequence of pods: it offers only the IDs still free
// and takes away what each pod was given.
struct Kubelet {
  explicit Kubelet(SlotPolicy p = SlotPolicy::Pack) : policy(p) {}

  std::vector<AllocationCandidate> available;
  SlotPolicy policy;

  std::vector<std::string> place(int size, const std::vector<std::string>& mustInclude = {}) {
    auto got = preferredAllocation(available, mustInclude, size, policy);
    expectValid(available, got, size);
    std::erase_if(available, [&](const auto& c) { return std::count(got.begin(), got.end(), c.id) > 0; });
    return got;
  }

  int freeOn(const std::string& dev) const {
    return static_cast<int>(std::count_if(available.begin(), available.end(),
                                          [&](const auto& c) { return c.physicalId == dev; }));
  }
};

TEST(PreferredAllocation, KeepsMustIncludeFirst) {
  std::vector<AllocationCandidate> a;
  addDevice(a, "A", 1, 0);
  addDevice(a, "B", 1, 0);
  addDevice(a, "C", 1, 1);
  auto got = preferredAllocation(a, {"C-s0"}, 2, SlotPolicy::Pack);
  expectValid(a, got, 2);
  EXPECT_EQ(got[0], "C-s0");
}

TEST(PreferredAllocation, PrefersOneNumaNode) {
  std::vector<AllocationCandidate> a;
  addDevice(a, "A", 1, 0);
  addDevice(a, "B", 1, 1);
  addDevice(a, "C", 1, 1);
  addDevice(a, "D", 1, 0);
  addDevice(a, "E", 1, 1);
  auto got = preferredAllocation(a, {}, 3, SlotPolicy::Pack);
  expectValid(a, got, 3);
  EXPECT_EQ(physicalOf(got), (std::set<std::string>{"B", "C", "E"}));
}

TEST(PreferredAllocation, FollowsTheMustIncludeNumaNode) {
  std::vector<AllocationCandidate> a;
  addDevice(a, "A", 1, 0);
  addDevice(a, "B", 1, 0);
  addDevice(a, "C", 1, 1);
  addDevice(a, "D", 1, 1);
  auto got = preferredAllocation(a, {"D-s0"}, 2, SlotPolicy::Pack);
  expectValid(a, got, 2);
  EXPECT_EQ(physicalOf(got), (std::set<std::string>{"C", "D"}));
}

TEST(PreferredAllocation, PackUsesFewestPhysicalDevices) {
  std::vector<AllocationCandidate> a;
  addDevice(a, "A", 2, 0);  // partly used elsewhere: only 2 free slots
  addDevice(a, "B", 4, 0);
  addDevice(a, "C", 3, 0);
  auto got = preferredAllocation(a, {}, 4, SlotPolicy::Pack);
  expectValid(a, got, 4);
  EXPECT_EQ(physicalOf(got), (std::set<std::string>{"B"}));
}

TEST(PreferredAllocation, PackFillsTheMustIncludeDeviceFirst) {
  std::vector<AllocationCandidate> a;
  addDevice(a, "A", 4, 0);
  addDevice(a, "B", 4, 0);
  auto got = preferredAllocation(a, {"B-s2"}, 3, SlotPolicy::Pack);
  expectValid(a, got, 3);
  EXPECT_EQ(physicalOf(got), (std::set<std::string>{"B"}));
}

TEST(PreferredAllocation, SpreadUsesManyPhysicalDevices) {
  std::vector<AllocationCandidate> a;
  addDevice(a, "A", 4, 0);
  addDevice(a, "B", 4, 0);
  addDevice(a, "C", 4, 0);
  auto got = preferredAllocation(a, {}, 3, SlotPolicy::Spread);
  expectValid(a, got, 3);
  EXPECT_EQ(physicalOf(got), (std::set<std::string>{"A", "B", "C"}));
}

TEST(PreferredAllocation, SpansNumaNodesWhenNoneSuffices) {
  std::vector<AllocationCandidate> a;
  addDevice(a, "A", 1, 0);
  addDevice(a, "B", 1, 1);
  addDevice(a, "C", 1, 1);
  addDevice(a, "D", 1, -1);
  auto got = preferredAllocation(a, {}, 3, SlotPolicy::Pack);
  expectValid(a, got, 3);
  // The largest node (1) is used whole, then one more.
  EXPECT_TRUE(physicalOf(got).count("B") && physicalOf(got).count("C"));
}

TEST(PreferredAllocation, AlwaysExactlyTheSizeFromAvailable) {
  // Every size over many shapes returns exactly `size` distinct available IDs.
  for (int devices = 1; devices <= 5; ++devices)
    for (int slots = 1; slots <= 4; ++slots) {
      std::vector<AllocationCandidate> a;
      for (int d = 0; d < devices; ++d) addDevice(a, "D" + std::to_string(d), slots, d % 2 ? 1 : -1);
      for (int size = 0; size <= devices * slots; ++size)
        for (auto policy : {SlotPolicy::Pack, SlotPolicy::Spread}) {
          auto got = preferredAllocation(a, {a.back().id}, std::max(size, 1), policy);
          expectValid(a, got, std::max(size, 1));
          EXPECT_EQ(got[0], a.back().id);
        }
    }
}

TEST(PreferredAllocation, RefusesWhatCannotBeDone) {
  std::vector<AllocationCandidate> a;
  addDevice(a, "A", 2, 0);
  EXPECT_THROW(preferredAllocation(a, {}, 3, SlotPolicy::Pack), std::invalid_argument);
  EXPECT_THROW(preferredAllocation(a, {"Z-s0"}, 1, SlotPolicy::Pack), std::invalid_argument);
  EXPECT_THROW(preferredAllocation(a, {"A-s0", "A-s1"}, 1, SlotPolicy::Pack), std::invalid_argument);
  EXPECT_THROW(preferredAllocation(a, {}, -1, SlotPolicy::Pack), std::invalid_argument);
}

// --- Sequences of pods: the kubelet offers only what is still free. ---

TEST(PreferredAllocation, PackFillsTheStartedStickAcrossPods) {
  Kubelet k;
  addDevice(k.available, "A", 4, -1);
  addDevice(k.available, "B", 4, -1);
  auto pod1 = k.place(1);
  auto pod2 = k.place(1);
  EXPECT_EQ(physicalOf(pod2), physicalOf(pod1)) << "pod 2 joins pod 1's stick";
  auto pod3 = k.place(4);
  ASSERT_EQ(physicalOf(pod3).size(), 1u) << "the 4-slot pod fits whole on the idle stick";
  EXPECT_NE(physicalOf(pod3), physicalOf(pod1));
}

TEST(PreferredAllocation, SpreadUsesTheIdleStickAcrossPods) {
  Kubelet k(SlotPolicy::Spread);
  addDevice(k.available, "A", 4, -1);
  addDevice(k.available, "B", 4, -1);
  auto pod1 = k.place(1);
  auto pod2 = k.place(1);
  EXPECT_NE(physicalOf(pod2), physicalOf(pod1)) << "pod 2 goes to the idle stick";
  // Two more single-slot pods: one on each stick.
  k.place(1);
  k.place(1);
  EXPECT_EQ(k.freeOn("A"), 2);
  EXPECT_EQ(k.freeOn("B"), 2);
}

TEST(PreferredAllocation, PackChoosesTheFullestDeviceThatHoldsThePodWhole) {
  Kubelet k;
  addSlots(k.available, "A", 3, 1, 0);  // 3 of 4 slots in use
  addSlots(k.available, "B", 2, 2, 0);  // 2 in use
  addDevice(k.available, "C", 4, 0);    // idle
  EXPECT_EQ(physicalOf(k.place(2)), (std::set<std::string>{"B"}));
  EXPECT_EQ(physicalOf(k.place(1)), (std::set<std::string>{"A"}));
  EXPECT_EQ(physicalOf(k.place(4)), (std::set<std::string>{"C"}));
}

TEST(PreferredAllocation, PackSpillsOntoTheFewestDevicesEndingOnTheFullest) {
  std::vector<AllocationCandidate> a;
  addSlots(a, "A", 1, 3, 0);
  addSlots(a, "B", 2, 2, 0);
  addSlots(a, "C", 3, 1, 0);
  addSlots(a, "D", 1, 3, 0);
  // No device holds 4: two devices must do, the biggest one plus the fullest
  // that takes the rest, so D's three free slots stay together.
  auto got = preferredAllocation(a, {}, 4, SlotPolicy::Pack);
  EXPECT_EQ(physicalOf(got), (std::set<std::string>{"A", "C"}));
}

TEST(PreferredAllocation, SpreadPlacesAMultiSlotPodOnTheDevicesWithMostFree) {
  Kubelet k(SlotPolicy::Spread);
  addDevice(k.available, "A", 4, 0);
  addDevice(k.available, "B", 4, 0);
  addSlots(k.available, "C", 3, 1, 0);  // nearly full
  auto got = k.place(3);
  EXPECT_EQ(physicalOf(got), (std::set<std::string>{"A", "B"})) << "C is left alone";
  EXPECT_EQ(k.freeOn("A") + k.freeOn("B"), 5);
  EXPECT_LE(std::abs(k.freeOn("A") - k.freeOn("B")), 1);
}

TEST(PreferredAllocation, PackTopsUpTheFullestDeviceAfterTheMustIncludeOne) {
  std::vector<AllocationCandidate> a;
  addSlots(a, "A", 2, 2, 0);
  addDevice(a, "B", 4, 0);
  addSlots(a, "C", 3, 1, 0);
  auto got = preferredAllocation(a, {"A-s2"}, 3, SlotPolicy::Pack);
  expectValid(a, got, 3);
  EXPECT_EQ(got[0], "A-s2");
  EXPECT_EQ(got[1], "A-s3") << "the must-include device is filled first";
  EXPECT_EQ(got[2], "C-s3") << "then the fullest device, not the idle one";
}

TEST(PreferredAllocation, PackSequenceWithMustInclude) {
  Kubelet k;
  addDevice(k.available, "A", 4, 0);
  addDevice(k.available, "B", 4, 0);
  addDevice(k.available, "C", 4, 0);
  auto pod1 = k.place(3);
  ASSERT_EQ(physicalOf(pod1).size(), 1u);
  const std::string first = *physicalOf(pod1).begin();
  EXPECT_EQ(physicalOf(k.place(1)), physicalOf(pod1)) << "fills the started device";
  auto pod3 = k.place(3, {"C-s0"});
  EXPECT_EQ(pod3[0], "C-s0");
  EXPECT_EQ(physicalOf(pod3), (std::set<std::string>{"C"}));
  // C has one slot left: the next single-slot pod tops it up.
  EXPECT_EQ(physicalOf(k.place(1)), (std::set<std::string>{"C"}));
  EXPECT_EQ(k.freeOn(first), 0);
  EXPECT_EQ(k.available.size(), 4u);
}

TEST(PreferredAllocation, SpreadSequenceWithMustInclude) {
  Kubelet k(SlotPolicy::Spread);
  addDevice(k.available, "A", 4, 0);
  addDevice(k.available, "B", 4, 0);
  addDevice(k.available, "C", 4, 0);
  EXPECT_EQ(physicalOf(k.place(1)), (std::set<std::string>{"A"}));
  auto pod2 = k.place(2, {"B-s0"});
  EXPECT_EQ(pod2[0], "B-s0");
  EXPECT_EQ(physicalOf(pod2), (std::set<std::string>{"B", "C"})) << "the second slot goes to idle C";
  // Every device now has 3 free slots: the next pods go round them.
  std::set<std::string> next;
  for (int pod = 0; pod < 3; ++pod) next.merge(physicalOf(k.place(1)));
  EXPECT_EQ(next, (std::set<std::string>{"A", "B", "C"}));
}

TEST(PreferredAllocation, PackPrefersTheFullerDeviceOnAnotherNumaNode) {
  Kubelet k;
  addDevice(k.available, "A", 4, 0);    // idle, on the lower node
  addSlots(k.available, "B", 3, 1, 1);  // one free slot left
  EXPECT_EQ(physicalOf(k.place(1)), (std::set<std::string>{"B"}));
  EXPECT_EQ(physicalOf(k.place(2)), (std::set<std::string>{"A"}));
  EXPECT_EQ(physicalOf(k.place(2)), (std::set<std::string>{"A"}));
}

TEST(PreferredAllocation, SpreadPrefersTheIdlerDeviceOnAnotherNumaNode) {
  Kubelet k(SlotPolicy::Spread);
  addSlots(k.available, "A", 3, 1, 0);
  addDevice(k.available, "B", 4, 1);
  EXPECT_EQ(physicalOf(k.place(1)), (std::set<std::string>{"B"}));
}

TEST(PreferredAllocation, SpreadKeepsToOneNumaNodeAndPicksItsIdlestDevices) {
  std::vector<AllocationCandidate> a;
  addSlots(a, "A", 1, 3, 0);
  addSlots(a, "B", 1, 3, 0);
  addDevice(a, "C", 4, 1);
  addDevice(a, "D", 4, 1);
  addDevice(a, "E", 4, -1);
  auto got = preferredAllocation(a, {}, 2, SlotPolicy::Spread);
  EXPECT_EQ(physicalOf(got), (std::set<std::string>{"C", "D"}));
}

TEST(PreferredAllocation, PackSequenceOverMixedNumaNodes) {
  Kubelet k;
  addDevice(k.available, "A", 4, 0);
  addDevice(k.available, "B", 4, 1);
  addDevice(k.available, "C", 4, 1);
  // Two slots then one: both on A, the lowest node's device, until it is full.
  EXPECT_EQ(physicalOf(k.place(2)), (std::set<std::string>{"A"}));
  EXPECT_EQ(physicalOf(k.place(1)), (std::set<std::string>{"A"}));
  // Three slots: A has one left, so node 1 takes them on one device.
  auto pod3 = k.place(3);
  ASSERT_EQ(physicalOf(pod3).size(), 1u);
  const std::string started = *physicalOf(pod3).begin();
  EXPECT_NE(started, "A");
  // One slot: A (one free) and the started node-1 device (one free) tie on
  // fullness; the lower node wins. Then the started device is topped up.
  EXPECT_EQ(physicalOf(k.place(1)), (std::set<std::string>{"A"}));
  EXPECT_EQ(physicalOf(k.place(1)), (std::set<std::string>{started}));
  // The last device is untouched and takes a whole 4-slot pod.
  EXPECT_EQ(physicalOf(k.place(4)).size(), 1u);
  EXPECT_TRUE(k.available.empty());
}

TEST(PreferredAllocation, DeviceModeSequences) {
  // One ID per device, physicalId == id.
  for (auto policy : {SlotPolicy::Pack, SlotPolicy::Spread}) {
    Kubelet k(policy);
    for (const char* dev : {"D0", "D1", "D2", "D3"}) k.available.push_back({dev, dev, 0});
    k.available.push_back({"D4", "D4", 1});
    EXPECT_EQ(k.place(2).size(), 2u);
    EXPECT_EQ(k.place(1).size(), 1u);
    auto got = k.place(2);
    EXPECT_EQ(std::count(got.begin(), got.end(), "D4"), 1) << "node 0 has one left, so the pod spans nodes";
    EXPECT_TRUE(k.available.empty());
    EXPECT_THROW(k.place(1), std::invalid_argument);
  }
}

// Random sequences of pods over uneven devices: every single-device pod goes
// where the policy says, whatever the order of `available`.
TEST(PreferredAllocation, PolicyHoldsOverRandomSequences) {
  std::mt19937 rng(8);
  for (int round = 0; round < 200; ++round) {
    for (auto policy : {SlotPolicy::Pack, SlotPolicy::Spread}) {
      Kubelet k(policy);
      int devices = 2 + static_cast<int>(rng() % 3);
      for (int d = 0; d < devices; ++d)
        addSlots(k.available, "D" + std::to_string(d), 0, 1 + static_cast<int>(rng() % 4), -1);
      while (!k.available.empty()) {
        std::shuffle(k.available.begin(), k.available.end(), rng);
        std::map<std::string, int> before;
        for (const auto& c : k.available) ++before[c.physicalId];
        int most = 0;
        for (const auto& [_, n] : before) most = std::max(most, n);
        int size = 1 + static_cast<int>(rng() % static_cast<unsigned>(std::min(most, 3)));
        auto got = k.place(size);
        auto on = physicalOf(got);
        if (policy == SlotPolicy::Pack) {
          // Whole on one device, the one with the fewest free slots that fit,
          // the lowest ID among equals.
          ASSERT_EQ(on.size(), 1u);
          std::string best;
          int bestFree = 1 << 30;
          for (const auto& [dev, n] : before)
            if (n >= size && n < bestFree) best = dev, bestFree = n;
          ASSERT_EQ(*on.begin(), best) << "size " << size;
        } else {
          // The pod's first slot went to a device with the most free slots.
          ASSERT_TRUE(std::any_of(on.begin(), on.end(), [&](const auto& d) { return before[d] == most; }))
              << "size " << size;
        }
      }
    }
  }
}

// An ID the plugin does not advertise (a stick just dropped, say) would be
// refused by Allocate: it is chosen only when the known IDs are too few.
TEST(PreferredAllocation, UnknownIdsComeLast) {
  for (SlotPolicy policy : {SlotPolicy::Pack, SlotPolicy::Spread}) {
    std::vector<AllocationCandidate> avail = {{"usb-9-9-s0", "usb-9-9-s0", -1, false}};
    addDevice(avail, "A", 4, 0);
    avail.push_back({"gone", "gone", 0, false});
    EXPECT_EQ(physicalOf(preferredAllocation(avail, {}, 1, policy)), std::set<std::string>{"A"});
    EXPECT_EQ(physicalOf(preferredAllocation(avail, {}, 4, policy)), std::set<std::string>{"A"});
    auto all = preferredAllocation(avail, {}, 6, policy);
    expectValid(avail, all, 6);
    EXPECT_EQ(std::vector<std::string>(all.end() - 2, all.end()), (std::vector<std::string>{"usb-9-9-s0", "gone"}))
        << "the unknown ones only to make up the size, in the kubelet's order";
    EXPECT_EQ(preferredAllocation(avail, {"gone"}, 1, policy), std::vector<std::string>{"gone"})
        << "must_include is kept whatever it is";
  }
}

}  // namespace
}  // namespace kubeaccel
