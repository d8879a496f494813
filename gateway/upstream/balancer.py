"""Choosing a replica: power of two choices, rendezvous hashing with bounded load, round robin.

Pure functions over replicas and their load scores; the pool owns state, caps and metrics.

- **Least outstanding (P2C).** Two distinct random candidates, the less loaded wins. Two
  random choices are nearly as good as a full scan and do not herd every gateway onto the
  one replica that looked idlest a moment ago. Outstanding requests alone equalise queue
  *lengths*, so a replica 10× slower than the rest would still get ~1/(1+10·(N-1)) of the
  traffic and own the p99; a replica whose recent latency is over ``SLOW_RATIO`` × the
  typical replica's has its load multiplied by that ratio (in the spirit of Finagle's and
  Linkerd's latency-aware balancers). Replicas within the ratio count as equally fast, so a
  healthy fleet sees plain least-outstanding with random ties.
- **Image affinity.** vLLM caches processed images per replica by content hash, so a repeat of
  an image is cheaper where it went before. The key (the first image's sha256) orders replicas
  by highest random weight (rendezvous hashing, over the replica URL so every gateway process
  agrees); adding or removing one replica moves only the keys it wins or held (~1/N). The
  first replica in that order whose load is under ``factor × mean load + 1`` takes the request
  (consistent hashing with bounded loads, Mirrokni et al. 2018), so a hot image cannot pile its
  traffic on one GPU.
"""

from __future__ import annotations

import hashlib
import random
import statistics
from collections.abc import Callable, Sequence
from typing import Literal

from gateway.upstream.replica import Replica

Decision = Literal["affinity_hit", "affinity_overflow", "least_outstanding", "round_robin"]
LoadFn = Callable[[Replica], float]

SLOW_RATIO = 1.5  # latency over this × the typical replica's marks a replica as slow
LATENCY_FLOOR = 0.01  # seconds added to both sides of the ratio: millisecond jitter is not slowness


def rendezvous_weight(key: str, url: str) -> int:
    """The highest-random-weight score of ``url`` for ``key`` (64 bits of BLAKE2b)."""
    digest = hashlib.blake2b(f"{key}\x00{url}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_order(key: str, replicas: Sequence[Replica]) -> list[Replica]:
    """Replicas from most to least preferred for ``key``."""
    return sorted(replicas, key=lambda r: rendezvous_weight(key, r.url), reverse=True)


def latency_cost(candidates: Sequence[Replica], load: LoadFn, now: float) -> LoadFn:
    """(load + 1) × slowness: latency over the lower median (both + LATENCY_FLOOR), 1 within SLOW_RATIO."""
    known = [lat for r in candidates if (lat := r.recent_latency(now)) is not None]
    if not known:
        return load
    typical = statistics.median_low(known)

    def cost(replica: Replica) -> float:
        latency = replica.recent_latency(now)
        ratio = 1.0 if latency is None else (latency + LATENCY_FLOOR) / (typical + LATENCY_FLOOR)
        return (load(replica) + 1.0) * (ratio if ratio > SLOW_RATIO else 1.0)

    return cost


def load_bound(loads: Sequence[float], factor: float, slack: float = 1.0) -> float:
    """A replica whose load is below this may take an affine request.

    ``slack`` is headroom on top of ``factor`` × the average: vLLM batches many sequences at
    once, so a few more on the replica that already holds the image cost little, while sending
    the image elsewhere costs a full re-encode there. The pool sets it from the batch size.
    """
    if not loads:
        return slack
    return factor * (sum(loads) / len(loads)) + slack


def power_of_two(free: Sequence[Replica], cost: LoadFn, rng: random.Random) -> Replica:
    """The cheaper of two distinct random replicas (ties broken at random)."""
    if len(free) == 1:
        return free[0]
    first, second = rng.sample(list(free), 2)
    a, b = cost(first), cost(second)
    if a == b:
        return first if rng.random() < 0.5 else second
    return first if a < b else second


def by_affinity(
    key: str,
    eligible: Sequence[Replica],
    free: Sequence[Replica],
    load: LoadFn,
    factor: float,
    rng: random.Random,
    cost: LoadFn | None = None,
    slack: float = 1.0,
) -> tuple[Replica, Decision]:
    """Rendezvous order over the eligible replicas, first free one under the load bound.

    ``free`` is the subset of ``eligible`` below its in-flight cap and must not be empty. When
    none is under the bound (every replica is busy alike) the cheaper of two wins.
    """
    bound = load_bound([load(r) for r in eligible], factor, slack)
    room = set(free)
    order = rendezvous_order(key, eligible)
    for rank, replica in enumerate(order):
        if replica in room and load(replica) < bound:
            return replica, "affinity_hit" if rank == 0 else "affinity_overflow"
    replica = power_of_two(free, cost or load, rng)
    return replica, "affinity_hit" if replica is order[0] else "affinity_overflow"


class RoundRobin:
    """Plain rotation over the free replicas (a baseline for the routing benchmark)."""

    def __init__(self) -> None:
        self._next = 0

    def pick(self, free: Sequence[Replica]) -> Replica:
        replica = free[self._next % len(free)]
        self._next += 1
        return replica
