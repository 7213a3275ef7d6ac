// FairShare, the policy behind the device scheduler's fairness (issue 10 §6),
// with made-up clocks and compute costs: deterministic, no threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <iostream>
#include <vector>

#include "scheduler/fair_share.hpp"

namespace kubeaccel::agent {
namespace {

using namespace std::chrono_literals;
using Ns = FairShare::Ns;
using Time = FairShare::Clock::time_point;

const Time t0 = Time{} + 1h;

TEST(FairShare, TheLeastChargedSlotLeadsAndTiesGoRoundRobin) {
  FairShare f(3);
  for (size_t s : {0, 1, 2}) f.queued(s, t0);
  std::vector<size_t> order;
  for (int i = 0; i < 3; ++i) {
    auto s = f.next();
    ASSERT_TRUE(s);
    order.push_back(*s);
    f.taken(*s);
    f.queued(*s, t0);  // the same client sends its next request
  }
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2})) << "equal virtual times: round robin";
  // Slot 1 is charged less than the others: it leads until it catches up.
  f.finished({{0, 1}}, {{0, 1}}, 10ms, t0);
  f.finished({{2, 1}}, {{2, 1}}, 10ms, t0);
  f.finished({{1, 1}}, {{1, 1}}, 4ms, t0);
  EXPECT_EQ(f.next(), 1u);
}

TEST(FairShare, ARunIsChargedInProportionToRows) {
  FairShare f(2);
  f.queued(0, t0);
  f.queued(1, t0);
  f.taken(0);
  f.taken(1);
  f.finished({{0, 1}, {1, 1}}, {{0, 3}, {1, 1}}, 40ms, t0 + 40ms);
  EXPECT_EQ(f.virtualTime(0), Ns(30ms));
  EXPECT_EQ(f.virtualTime(1), Ns(10ms));
  // A cancelled job ran no rows: nothing is charged for it.
  f.queued(1, t0 + 40ms);
  f.taken(1);
  f.finished({{1, 1}}, {}, 5ms, t0 + 45ms);
  EXPECT_EQ(f.virtualTime(1), Ns(10ms));
}

// Both slots always have work; slot 0's requests cost 10 ms, slot 1's 30 ms.
// Time is shared, not requests: slot 0 gets three runs for each of slot 1's.
TEST(FairShare, SlotsWithWorkGetEqualComputeTimeNotEqualRequests) {
  FairShare f(2);
  f.queued(0, t0);
  f.queued(1, t0);
  Time now = t0;
  int runs[2] = {0, 0};
  Ns spent[2] = {};
  for (int i = 0; i < 400; ++i) {
    size_t s = *f.next();
    f.taken(s);
    Ns cost = s == 0 ? Ns(10ms) : Ns(30ms);
    now += cost;
    f.finished({{s, 1}}, {{s, 1}}, cost, now);
    f.queued(s, now);
    ++runs[s];
    spent[s] += cost;
  }
  std::cout << "[ fair     ] runs " << runs[0] << " : " << runs[1] << ", compute " << spent[0].count() / 1000000
            << " ms : " << spent[1].count() / 1000000 << " ms\n";
  EXPECT_LE(std::abs((spent[0] - spent[1]).count()), Ns(30ms).count()) << "compute differs by more than one run";
  EXPECT_NEAR(static_cast<double>(runs[0]) / runs[1], 3.0, 0.1);
}

TEST(FairShare, IdleTimeEarnsNoCredit) {
  FairShare f(2);
  Time now = t0;
  // Slot 0 has the device to itself for 1 s.
  for (int i = 0; i < 100; ++i) {
    f.queued(0, now);
    ASSERT_EQ(f.next(), 0u);
    f.taken(0);
    now += 10ms;
    f.finished({{0, 1}}, {{0, 1}}, 10ms, now);
  }
  f.queued(0, now);
  // Slot 1 arrives: it starts level with slot 0, not 1 s behind it, so the two
  // take turns instead of slot 1 having the device for the next second.
  f.queued(1, now);
  EXPECT_EQ(f.virtualTime(1), f.virtualTime(0));
  // An idle device too: a slot that comes back after everyone went idle
  // starts where the busiest slot got to.
  FairShare g(2);
  g.queued(0, t0);
  g.next();
  g.taken(0);
  g.finished({{0, 1}}, {{0, 1}}, 50ms, t0 + 50ms);
  g.queued(0, t0 + 50ms);
  g.next();
  g.taken(0);
  g.finished({{0, 1}}, {{0, 1}}, 50ms, t0 + 100ms);
  g.queued(1, t0 + 10s);
  EXPECT_EQ(g.virtualTime(1), Ns(100ms));
}

TEST(FairShare, OneSlotCannotFillABatchWhileAnotherIsPresent) {
  FairShare f(2);
  const Ns row = 10ms;
  // Slot 1's client just had its answer (it is between two requests).
  f.queued(1, t0);
  f.next();
  f.taken(1);
  f.finished({{1, 1}}, {{1, 1}}, row, t0 + 10ms);
  f.queued(0, t0 + 10ms);
  for (int i = 0; i < 15; ++i) f.queued(0, t0 + 10ms);
  ASSERT_EQ(f.next(), 0u);
  f.taken(0);
  FairShare::PerSlot batch{{0, 1}};
  Time now = t0 + 11ms;
  int64_t added = 0;
  while (added < 15 && f.mayAdd(0, 1, batch, row, now)) {
    ++batch[0];
    ++added;
  }
  EXPECT_LE(added, 1) << "slot 0 filled the batch while slot 1 was present";
  // Slot 1's next request may join slot 0's batch.
  EXPECT_TRUE(f.mayAdd(1, 1, batch, row, now));
  // Once slot 1 has been away longer than the grace, slot 0 batches freely.
  Time later = t0 + 10ms + f.grace() + 1ms;
  EXPECT_FALSE(f.othersPresent(0, later));
  EXPECT_TRUE(f.mayAdd(0, 14, batch, row, later));
}

// Eight pods with one batch-1 client each: single-slot runs have put them
// further apart than one row's cost, yet each may add its one row to the
// batch (an equal split), while a job with more rows than any other slot's
// share of the batch is still bounded by virtual time.
TEST(FairShare, EqualSlotsJoinABatchWithAnEqualSplitWhateverTheirCharges) {
  FairShare f(9);
  const Ns row = 1ms;
  for (size_t s = 0; s < 8; ++s) {  // slot s ran s solo 3 ms runs
    for (size_t r = 0; r < s; ++r) {
      f.queued(s, t0);
      f.taken(s);
      f.finished({{s, 1}}, {{s, 1}}, 3ms, t0);
    }
    f.queued(s, t0);
  }
  size_t lead = *f.next();
  EXPECT_EQ(lead, 0u) << "the least-charged slot leads";
  f.taken(lead);
  FairShare::PerSlot batch{{lead, 1}};
  for (size_t s = 1; s < 8; ++s) {
    EXPECT_TRUE(f.mayAdd(s, 1, batch, row, t0)) << "slot " << s << " (" << s * 3 << " ms ahead) may add its row";
    batch[s] = 1;
  }
  // Slot 8 is far ahead with a 32-row job: more than anyone's share.
  for (int r = 0; r < 20; ++r) {
    f.queued(8, t0);
    f.taken(8);
    f.finished({{8, 1}}, {{8, 1}}, 3ms, t0);
  }
  f.queued(8, t0);
  EXPECT_FALSE(f.mayAdd(8, 32, batch, row, t0));
  EXPECT_TRUE(f.mayAdd(8, 1, batch, row, t0)) << "one row is an equal split";
}

TEST(FairShare, TwoBusySlotsShareTheirBatches) {
  FairShare f(2);
  for (int i = 0; i < 16; ++i) {
    f.queued(0, t0);
    f.queued(1, t0);
  }
  size_t lead = *f.next();
  f.taken(lead);
  FairShare::PerSlot batch{{lead, 1}};
  int64_t rows = 1;
  for (bool took = true; took && rows < 8;) {
    took = false;
    for (size_t s : {size_t{0}, size_t{1}})
      if (rows < 8 && f.mayAdd(s, 1, batch, 10ms, t0)) {
        f.taken(s);
        ++batch[s];
        ++rows;
        took = true;
      }
  }
  EXPECT_EQ(rows, 8);
  EXPECT_EQ(batch[0], 4);
  EXPECT_EQ(batch[1], 4);
}

TEST(FairShare, AnUnderservedClientBetweenTwoRequestsIsWaitedForAndCharged) {
  FairShare f(2);
  // Slot 0 ran a 200 ms batch; slot 1 (one request at a time) ran 10 ms and
  // is between two requests, with slot 0's next batch queued.
  f.queued(0, t0);
  f.queued(1, t0);
  f.taken(0);
  f.finished({{0, 1}}, {{0, 32}}, 200ms, t0 + 200ms);
  f.taken(1);
  f.finished({{1, 1}}, {{1, 1}}, 10ms, t0 + 210ms);
  f.queued(0, t0 + 210ms);
  auto w = f.awaited(t0 + 210ms);
  ASSERT_TRUE(w) << "slot 1 is 190 ms behind and present: the device should wait for it";
  EXPECT_EQ(w->slot, 1u);
  EXPECT_EQ(w->until, t0 + 210ms + f.grace());
  f.chargeWait(1, 1ms);
  EXPECT_EQ(f.virtualTime(1), Ns(11ms));
  // It came back within its grace: it keeps its place (no clamp to slot 0).
  f.queued(1, t0 + 211ms);
  EXPECT_EQ(f.virtualTime(1), Ns(11ms));
  EXPECT_EQ(f.next(), 1u);
  // Past its grace it is not waited for.
  FairShare g(2);
  g.queued(0, t0);
  g.queued(1, t0);
  g.taken(0);
  g.finished({{0, 1}}, {{0, 32}}, 200ms, t0 + 200ms);
  g.taken(1);
  g.finished({{1, 1}}, {{1, 1}}, 10ms, t0 + 210ms);
  g.queued(0, t0 + 210ms);
  EXPECT_FALSE(g.awaited(t0 + 210ms + g.grace()));
}

// ---------------------------------------------------------------------------
// The scenarios, simulated: one worker, a run of b rows costs
// 5 ms + 7.5 ms * b, a client sends its next request 0.5 ms after its answer.

struct Client {
  size_t slot;
  int64_t rows;
  Time next;  // when its next request arrives
};

struct SimResult {
  Ns compute[2] = {};
  int64_t rows[2] = {};
  std::vector<double> victimMs;  // latency of slot 1's requests
  double meanBatch = 0;
};

SimResult simulate(std::vector<Client> clients, int64_t maxBatch, std::chrono::seconds length) {
  auto cost = [](int64_t rows) { return Ns(5ms) + Ns(7500us) * rows; };
  const Ns think = 500us;
  FairShare f(2);
  std::deque<size_t> queue[2];  // client indices
  std::vector<Time> sent(clients.size());
  SimResult r;
  int64_t runs = 0, allRows = 0;
  Time now = t0;
  const Time end = t0 + length;
  auto arrive = [&] {
    for (size_t c = 0; c < clients.size(); ++c)
      if (clients[c].next <= now) {
        f.queued(clients[c].slot, clients[c].next);
        queue[clients[c].slot].push_back(c);
        sent[c] = clients[c].next;
        clients[c].next = Time::max();
      }
  };
  while (now < end) {
    arrive();
    if (queue[0].empty() && queue[1].empty()) {
      Time next = Time::max();
      for (const auto& c : clients) next = std::min(next, c.next);
      now = next;
      continue;
    }
    if (auto w = f.awaited(now)) {
      Time back = Time::max();
      for (const auto& c : clients)
        if (c.slot == w->slot) back = std::min(back, c.next);
      Time until = std::min(back, w->until);
      f.chargeWait(w->slot, until - now);
      now = until;
      continue;
    }
    size_t lead = *f.next();
    std::vector<size_t> batch = {queue[lead].front()};
    queue[lead].pop_front();
    f.taken(lead);
    FairShare::PerSlot rows{{lead, clients[batch[0]].rows}}, jobs{{lead, 1}};
    int64_t total = rows[lead];
    for (bool took = true; took;) {
      took = false;
      for (size_t s : {lead, 1 - lead}) {
        if (queue[s].empty()) continue;
        int64_t n = clients[queue[s].front()].rows;
        if (total + n > maxBatch || !f.mayAdd(s, n, rows, cost(8) / 8, now)) continue;
        batch.push_back(queue[s].front());
        queue[s].pop_front();
        f.taken(s);
        rows[s] += n;
        ++jobs[s];
        total += n;
        took = true;
      }
    }
    Ns c = cost(total);
    now += c;
    f.finished(jobs, rows, c, now);
    ++runs;
    allRows += total;
    for (auto [s, n] : rows) {
      r.compute[s] += c * n / total;
      r.rows[s] += n;
    }
    for (size_t k : batch) {
      if (clients[k].slot == 1) r.victimMs.push_back(std::chrono::duration<double, std::milli>(now - sent[k]).count());
      clients[k].next = now + think;
    }
  }
  r.meanBatch = static_cast<double>(allRows) / static_cast<double>(runs);
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double victimShare(const SimResult& r) {
  return static_cast<double>(r.compute[1].count()) / static_cast<double>((r.compute[0] + r.compute[1]).count());
}

TEST(FairShare, SimulatedVictimAgainstSixteenBatchOneClients) {
  std::vector<Client> clients;
  for (int i = 0; i < 16; ++i) clients.push_back({0, 1, t0});
  SimResult alone = simulate({{1, 1, t0}}, 8, 10s);
  clients.push_back({1, 1, t0});
  SimResult shared = simulate(clients, 8, 10s);
  double p50Alone = median(alone.victimMs), p50 = median(shared.victimMs);
  std::cout << "[ fair     ] victim p50 alone " << p50Alone << " ms, with 16 clients " << p50 << " ms; rows "
            << shared.rows[0] << " : " << shared.rows[1] << "; victim's compute share " << victimShare(shared)
            << "; mean batch " << shared.meanBatch << "\n";
  EXPECT_LE(p50, 3 * p50Alone);
  EXPECT_NEAR(victimShare(shared), 0.5, 0.1);
  // Alone, the sixteen clients still get full batches.
  clients.pop_back();
  SimResult flood = simulate(clients, 8, 10s);
  EXPECT_GE(flood.meanBatch, 7.5);
}

TEST(FairShare, SimulatedVictimAgainstEightBatch32Clients) {
  std::vector<Client> clients;
  for (int i = 0; i < 8; ++i) clients.push_back({0, 32, t0});
  clients.push_back({1, 1, t0});
  SimResult r = simulate(clients, 32, 20s);
  std::cout << "[ fair     ] victim against 8 x batch-32: p50 " << median(r.victimMs) << " ms, compute share "
            << victimShare(r) << ", rows " << r.rows[0] << " : " << r.rows[1] << "\n";
  // The device waits for the one-request-at-a-time victim while it is behind:
  // it gets half the time, not one 12.5 ms run per 245 ms batch.
  EXPECT_NEAR(victimShare(r), 0.5, 0.1);
}

}  // namespace
}  // namespace kubeaccel::agent
