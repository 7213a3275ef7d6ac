#pragma once
// How one device's time is shared between its slots (issue 10 §6): slots with
// waiting work get equal compute time, not equal requests or rows.
//
// Each slot has a virtual time: the compute time charged to it, in ns. A
// run's measured compute time is split across the slots whose rows were in it,
// in proportion to their rows. The next batch is led by the slot with queued
// work and the least virtual time (start-time fair queueing); ties go round
// robin from the slot after the last leader. A slot that comes back after
// being idle starts at the least virtual time of the slots with work (or, when
// none has any, at the highest virtual time a run has reached), so idle time
// earns no credit.
//
// A slot is *present* while it has jobs queued or running, or for the return
// grace after its last job finished: a client that sends its next request
// only once it has the answer is away only for that moment, and is treated as
// still there so that nobody takes the device behind its back:
//  - A slot may put rows into a batch only while its virtual time, with the
//    batch's estimated charge, stays within one row's cost of every other
//    present slot's (so one pod cannot fill every batch). A slot with no
//    other present slot is not bounded: batching is then all gain. A slot's
//    first job may always join with no more rows than another slot already
//    has in the batch: an equal split cannot tilt the shares.
//  - When the present slot with the least virtual time has nothing queued,
//    the device waits for it, at most until its grace ends, and charges it
//    the wait (it held the device). Without this, a one-request-at-a-time
//    client would get one run per turn against a neighbour's batch-32 run.
// A slot back within its grace keeps its virtual time (it was not idle).
//
// Not thread-safe: DeviceScheduler calls it under its lock. Times are passed
// in, so the policy can be tested with made-up clocks and costs.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace kubeaccel::agent {

class FairShare {
 public:
  using Clock = std::chrono::steady_clock;
  using Ns = std::chrono::nanoseconds;
  // Per slot (only the slots in a batch): a count of jobs or rows.
  using PerSlot = std::map<size_t, int64_t>;

  // Shortest return grace; the grace is the longer of this and the last
  // run's compute time (a client needs a gRPC round trip to come back; on a
  // busy CPU that takes a while when runs are long).
  static constexpr Ns kMinGrace = std::chrono::milliseconds(2);

  explicit FairShare(size_t slots);

  // A job was queued on `slot` at `now`.
  void queued(size_t slot, Clock::time_point now);
  // A queued job of `slot` was taken into a batch (it runs now).
  void taken(size_t slot);
  // A queued job of `slot` was dropped without running (shutdown).
  void dropped(size_t slot);
  // A batch ended at `now`: `jobs` were taken per slot, `rows` of them ran
  // (cancelled and expired jobs run no rows) and the run took `compute`.
  // Charges each slot compute * its rows / all rows. A run that failed still
  // used the device and is charged the same way.
  void finished(const PerSlot& jobs, const PerSlot& rows, Ns compute, Clock::time_point now);

  // The slot that leads the next batch: queued work and the least virtual
  // time, ties round robin. nullopt when nothing is queued. Moves the cursor.
  std::optional<size_t> next();

  struct Awaited {
    size_t slot;
    Clock::time_point until;  // its grace ends
  };
  // A present slot with nothing queued or running whose virtual time is
  // below that of every slot with queued work: the device should wait for
  // its next request rather than run others' work. nullopt: go ahead.
  std::optional<Awaited> awaited(Clock::time_point now) const;
  // The device waited `d` for `slot`: it is charged as if it had run.
  void chargeWait(size_t slot, Ns d);

  // Whether `slot` may add `rows` to a batch that holds `batchRows` so far,
  // each row estimated at `rowCost` of compute. The lead job is always taken
  // (the caller does not ask for it).
  bool mayAdd(size_t slot, int64_t rows, const PerSlot& batchRows, Ns rowCost, Clock::time_point now) const;
  // Whether a slot other than `slot` is present (a batch led by `slot` may
  // then wait for companions).
  bool othersPresent(size_t slot, Clock::time_point now) const;

  Ns virtualTime(size_t slot) const { return slots_.at(slot).v; }
  Ns grace() const { return std::max(kMinGrace, lastRun_); }

 private:
  struct Slot {
    Ns v{0};
    int64_t queued = 0, running = 0;
    std::optional<Clock::time_point> lastDone;
  };
  bool active(const Slot& s) const { return s.queued > 0 || s.running > 0; }
  bool present(const Slot& s, Clock::time_point now) const;

  std::vector<Slot> slots_;
  size_t cursor_ = 0;
  Ns floor_{0};    // the highest virtual time a run has charged a slot up to
  Ns lastRun_{0};  // the last run's compute time
};

}  // namespace kubeaccel::agent
