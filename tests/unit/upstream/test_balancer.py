"""Replica choice: rendezvous hashing stability, bounded load, power of two choices."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.upstream.balancer import by_affinity, latency_cost, load_bound, power_of_two, rendezvous_order
from gateway.upstream.replica import Replica

KEYS = [f"{i:064x}" for i in range(3000)]


def replicas(count: int) -> list[Replica]:
    return [Replica(name=f"r{i}", url=f"http://10.0.0.{i + 1}:8000") for i in range(count)]


def owner(key: str, pool: list[Replica]) -> str:
    return rendezvous_order(key, pool)[0].name


def inflight(r: Replica) -> float:
    return float(r.inflight)


def test_rendezvous_spreads_keys_evenly() -> None:
    pool = replicas(4)
    counts = Counter(owner(key, pool) for key in KEYS)
    assert set(counts) == {"r0", "r1", "r2", "r3"}
    for count in counts.values():
        assert abs(count - len(KEYS) / 4) < len(KEYS) * 0.05


@pytest.mark.parametrize("count", [3, 5, 8])
def test_adding_a_replica_moves_only_its_share_of_keys(count: int) -> None:
    before = replicas(count)
    after = replicas(count + 1)
    moved = [key for key in KEYS if owner(key, before) != owner(key, after)]
    # Every key that moved went to the new replica, and about 1/(N+1) of them did.
    assert all(owner(key, after) == f"r{count}" for key in moved)
    assert abs(len(moved) / len(KEYS) - 1 / (count + 1)) < 0.04


def test_removing_a_replica_moves_only_its_keys() -> None:
    full = replicas(5)
    without = [r for r in full if r.name != "r2"]
    for key in KEYS:
        if owner(key, full) != "r2":
            assert owner(key, without) == owner(key, full)


def test_order_depends_on_url_not_list_position() -> None:
    pool = replicas(4)
    shuffled = list(reversed(pool))
    assert all(owner(key, pool) == owner(key, shuffled) for key in KEYS[:200])


def test_affinity_hit_when_preferred_is_under_the_bound() -> None:
    pool = replicas(3)
    preferred = rendezvous_order(KEYS[0], pool)[0]
    replica, decision = by_affinity(KEYS[0], pool, pool, inflight, 1.5, random.Random(1))
    assert (replica, decision) == (preferred, "affinity_hit")


def test_affinity_overflows_in_rendezvous_order_when_preferred_is_over_the_bound() -> None:
    pool = replicas(3)
    first, second, third = rendezvous_order(KEYS[0], pool)
    first.inflight, second.inflight, third.inflight = 6, 1, 0  # mean 7/3, bound 4.5
    replica, decision = by_affinity(KEYS[0], pool, pool, inflight, 1.5, random.Random(1))
    assert (replica, decision) == (second, "affinity_overflow")


def test_bounded_load_holds_for_a_hot_key() -> None:
    """One key, many concurrent requests: no replica goes above factor × mean + 1."""
    pool = replicas(4)
    rng = random.Random(7)
    factor = 1.25
    for _ in range(200):
        loads = [r.inflight for r in pool]
        replica, _ = by_affinity(KEYS[1], pool, pool, inflight, factor, rng)
        assert replica.inflight < load_bound(loads, factor)
        replica.inflight += 1
    # Each placement was under the bound, so nobody ends more than one request above it.
    assert max(r.inflight for r in pool) < factor * (200 / 4) + 2
    assert min(r.inflight for r in pool) > 0  # the overflow went somewhere useful


def test_affinity_skips_replicas_without_room() -> None:
    pool = replicas(3)
    first = rendezvous_order(KEYS[2], pool)[0]
    free = [r for r in pool if r is not first]
    replica, decision = by_affinity(KEYS[2], pool, free, inflight, 1.5, random.Random(1))
    assert replica is not first and decision == "affinity_overflow"


def test_power_of_two_prefers_the_less_loaded() -> None:
    pool = replicas(2)
    pool[0].inflight = 5
    rng = random.Random(3)
    assert all(power_of_two(pool, inflight, rng) is pool[1] for _ in range(50))


def test_power_of_two_avoids_a_loaded_replica_among_many() -> None:
    pool = replicas(5)
    pool[0].inflight = 50
    rng = random.Random(3)
    picks = Counter(power_of_two(pool, inflight, rng).name for _ in range(1000))
    assert picks["r0"] == 0
    assert len(picks) == 4


def test_load_counts_fresh_scraped_queue_only() -> None:
    replica = Replica(name="r0", url="http://a", inflight=2, waiting=3.0, kv_usage=0.5, scraped_at=100.0)
    assert replica.load(now=101.0, fresh_for=5.0) == 2 + 3 + 4 * 0.5
    assert replica.load(now=200.0, fresh_for=5.0) == 2.0


def test_a_slow_replica_costs_in_proportion_to_its_slowness() -> None:
    pool = replicas(3)
    for replica, latency in zip(pool, (0.5, 0.05, 0.05), strict=True):
        replica.observed(now=10.0, seconds=latency)
    pool[1].inflight = pool[2].inflight = 3
    cost = latency_cost(pool, inflight, now=10.0)
    assert cost(pool[1]) == cost(pool[2]) == 4
    assert cost(pool[0]) > cost(pool[1])  # idle but 5.5× slower: worse than 3 in flight on a fast one
    rng = random.Random(2)
    assert all(power_of_two(pool, cost, rng) is not pool[0] for _ in range(100))


def test_latency_jitter_is_not_slowness() -> None:
    pool = replicas(3)
    for replica, latency in zip(pool, (0.004, 0.011, 0.006), strict=True):
        replica.observed(now=10.0, seconds=latency)
    cost = latency_cost(pool, inflight, now=10.0)
    assert {cost(r) for r in pool} == {1.0}  # plain least outstanding, random ties


def test_a_slow_mark_fades_without_new_answers() -> None:
    pool = replicas(2)
    pool[0].observed(now=0.0, seconds=2.0)
    pool[1].observed(now=0.0, seconds=0.1)
    assert latency_cost(pool, inflight, now=0.0)(pool[0]) > 1
    assert latency_cost(pool, inflight, now=60.0)(pool[0]) == 1  # avoided long enough: try it again


def test_requests_stuck_in_flight_mark_a_replica_slow_before_they_answer() -> None:
    pool = replicas(2)
    for replica in pool:
        replica.observed(now=0.0, seconds=0.1)
    pool[0].lease_started(now=0.0)
    assert pool[0].recent_latency(now=3.0) == 3.0
    assert latency_cost(pool, inflight, now=3.0)(pool[0]) > 1
