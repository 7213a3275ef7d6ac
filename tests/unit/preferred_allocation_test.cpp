#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "preferred_allocation.hpp"

namespace kubeaccel {
namespace {

// Physical devices "<dev>" with `slots` slots "<dev>-s<k>" on `numa`.
void addDevice(std::vector<AllocationCandidate>& out, const std::string& dev, int slots, int numa) {
  for (int k = 0; k < slots; ++k) out.push_back({dev + "-s" + std::to_string(k), dev, numa});
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

}  // namespace
}  // namespace kubeaccel
