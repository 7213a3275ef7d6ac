#include "scheduler/fair_share.hpp"

#include <algorithm>
#include <limits>

namespace kubeaccel::agent {

FairShare::FairShare(size_t slots) : slots_(std::max<size_t>(slots, 1)) {}

bool FairShare::present(const Slot& s, Clock::time_point now) const {
  return active(s) || (s.lastDone && now - *s.lastDone < grace());
}

void FairShare::queued(size_t slot, Clock::time_point now) {
  Slot& s = slots_.at(slot);
  if (!present(s, now)) {
    // Back from idle: start where the slots with work are, not behind them.
    Ns least = Ns::max();
    for (const Slot& o : slots_)
      if (&o != &s && active(o)) least = std::min(least, o.v);
    s.v = std::max(s.v, least == Ns::max() ? floor_ : least);
  }
  ++s.queued;
}

void FairShare::taken(size_t slot) {
  Slot& s = slots_.at(slot);
  --s.queued;
  ++s.running;
}

void FairShare::dropped(size_t slot) { --slots_.at(slot).queued; }

void FairShare::finished(const PerSlot& jobs, const PerSlot& rows, Ns compute, Clock::time_point now) {
  int64_t total = 0;
  for (const auto& [slot, r] : rows) total += r;
  if (total > 0)
    for (const auto& [slot, r] : rows) {
      Slot& s = slots_.at(slot);
      s.v += Ns(compute.count() * r / total);
      floor_ = std::max(floor_, s.v);
    }
  for (const auto& [slot, n] : jobs) {
    Slot& s = slots_.at(slot);
    s.running -= n;
    s.lastDone = now;
  }
  lastRun_ = compute;
}

std::optional<size_t> FairShare::next() {
  std::optional<size_t> lead;
  for (size_t i = 0; i < slots_.size(); ++i) {
    size_t k = (cursor_ + i) % slots_.size();
    if (slots_[k].queued > 0 && (!lead || slots_[k].v < slots_[*lead].v)) lead = k;
  }
  if (lead) cursor_ = *lead + 1;
  return lead;
}

std::optional<FairShare::Awaited> FairShare::awaited(Clock::time_point now) const {
  Ns leastQueued = Ns::max();
  for (const Slot& s : slots_)
    if (s.queued > 0) leastQueued = std::min(leastQueued, s.v);
  std::optional<Awaited> best;
  for (size_t k = 0; k < slots_.size(); ++k) {
    const Slot& s = slots_[k];
    if (active(s) || !present(s, now) || s.v >= leastQueued) continue;
    if (!best || s.v < slots_[best->slot].v) best = Awaited{k, *s.lastDone + grace()};
  }
  return best;
}

void FairShare::chargeWait(size_t slot, Ns d) { slots_.at(slot).v += std::max(d, Ns(0)); }

bool FairShare::mayAdd(size_t slot, int64_t rows, const PerSlot& batchRows, Ns rowCost,
                       Clock::time_point now) const {
  auto inBatch = [&](size_t k) -> int64_t {
    auto it = batchRows.find(k);
    return it == batchRows.end() ? 0 : it->second;
  };
  // A slot's first job may join with as many rows as another slot already
  // has in the batch: an equal split keeps the shares equal whatever the
  // virtual times, so equal slots (8 pods, one row each) batch freely even
  // when single-slot runs have put them a little apart.
  if (inBatch(slot) == 0) {
    int64_t most = 0;
    for (const auto& [k, n] : batchRows)
      if (k != slot) most = std::max(most, n);
    if (rows <= most) return true;
  }
  const Ns mine = slots_.at(slot).v + rowCost * (inBatch(slot) + rows);
  for (size_t k = 0; k < slots_.size(); ++k) {
    if (k == slot || (!present(slots_[k], now) && inBatch(k) == 0)) continue;
    if (mine > slots_[k].v + rowCost * inBatch(k) + rowCost) return false;
  }
  return true;
}

bool FairShare::othersPresent(size_t slot, Clock::time_point now) const {
  for (size_t k = 0; k < slots_.size(); ++k)
    if (k != slot && present(slots_[k], now)) return true;
  return false;
}

}  // namespace kubeaccel::agent
