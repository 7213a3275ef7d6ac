#pragma once
// GetPreferredAllocation's policy. Pure: unit tested on its own.
//
// The kubelet offers only the IDs still free, so `available` is all the state
// needed: a physical device's free slots are its IDs in it, and (all devices
// of a class having the same number of slots) fewer free means more in use.
// The policy therefore holds across successive requests, not only within one.
//
// 1. must_include first, then the rest from one NUMA node if one has enough
//    (the must_include node first), else across nodes, largest first.
// 2. SlotPolicy::Pack is best fit: slots of devices the request already holds
//    first, then the device with the fewest free slots that holds the rest
//    whole; if none can, the device with the most free slots, then again.
//    Among NUMA nodes: fewest new devices, then the fullest.
// 3. SlotPolicy::Spread levels the load: each slot goes to the device with
//    the most free slots left, among equals the one holding fewer of this
//    request's slots. Among NUMA nodes: the most free slots left on the
//    busiest device used, then the most devices.
// 4. IDs that are not `known` come last, after every known one.
// 5. Ties go to the lowest physical ID, then a node with affinity over -1,
//    then the lowest node; within a device, slots in the kubelet's order.

#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace kubeaccel {

struct AllocationCandidate {
  std::string id;
  std::string physicalId;
  int numaNode = -1;
  // False for an ID the plugin does not advertise (any more): such IDs are
  // picked only when the known ones are too few, since Allocate refuses them.
  bool known = true;
};

// Returns exactly `size` distinct IDs drawn from `available` (duplicates count
// once), must_include first. Throws std::invalid_argument (the caller answers
// INVALID_ARGUMENT) when `size` is negative or exceeds the available IDs, when
// a must_include ID is not available, or when must_include lists more than
// `size` IDs.
std::vector<std::string> preferredAllocation(const std::vector<AllocationCandidate>& available,
                                             const std::vector<std::string>& mustInclude, int size,
                                             SlotPolicy policy);

}  // namespace kubeaccel
