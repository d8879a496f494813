"""Limit state in this process: the embedded backend, and the fallback while Redis is down.

Same algorithms as the Redis scripts (GCRA for rates, leases with a TTL for concurrency), on a
monotonic clock. Single-threaded asyncio makes each method atomic: none of them awaits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.limits.backend import RateOutcome, gcra
from gateway.limits.decision import Kind, Quota

PRUNE_EVERY = 1024  # checks between sweeps of idle state

# Where a bucket with no state starts: (kind, key, now, window) -> TAT. Without one, full.
StartAt = Callable[[Kind, str, float, float], float]


class LocalBackend:
    """:class:`~gateway.limits.backend.LimitBackend` held in memory."""

    def __init__(
        self, name: str = "local", clock: Callable[[], float] = time.monotonic, start: StartAt | None = None
    ) -> None:
        self.name = name
        self._clock = clock
        self._start = start
        self._tat: dict[tuple[Kind, str], float] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._ops = 0

    async def hit(
        self, subject: str, rpm: int | None, tpm: int | None, cost: int, window: float
    ) -> RateOutcome:
        now = self._clock()
        self._maybe_prune(now)
        specs: tuple[tuple[Kind, int | None, int], ...] = (("rpm", rpm, 1), ("tpm", tpm, cost))
        steps = [
            gcra(kind, self._tat_of(kind, subject, now, window), now, limit, window, units)
            for kind, limit, units in specs
            if limit is not None
        ]
        quotas = tuple(step.quota for step in steps)
        refused = [step for step in steps if not step.allowed]
        if refused:
            return RateOutcome(
                allowed=False, quotas=quotas, refused=refused[0].quota.kind,
                retry_after=max(step.retry_after for step in refused),
            )  # fmt: skip
        for step in steps:
            self._tat[(step.quota.kind, subject)] = step.new_tat
        return RateOutcome(allowed=True, quotas=quotas)

    async def adjust(self, subject: str, limit: int, delta: int, window: float, kind: Kind = "tpm") -> None:
        now = self._clock()
        key: tuple[Kind, str] = (kind, subject)
        tat = max(self._tat_of(kind, subject, now, window), now) + delta * window / limit
        if tat <= now and self._start is None:  # with a start function, no entry is not "whole"
            self._tat.pop(key, None)
        else:
            self._tat[key] = tat

    async def acquire(self, subject: str, limit: int, lease_id: str, ttl: float) -> bool:
        now = self._clock()
        leases = self._live_leases(subject, now)
        if len(leases) >= limit:
            return False
        leases[lease_id] = now + ttl
        return True

    async def renew(self, subject: str, lease_id: str, ttl: float) -> None:
        self._leases.setdefault(subject, {})[lease_id] = self._clock() + ttl

    async def release(self, subject: str, lease_id: str) -> None:
        leases = self._leases.get(subject)
        if leases is not None:
            leases.pop(lease_id, None)
            if not leases:
                del self._leases[subject]

    def _live_leases(self, subject: str, now: float) -> dict[str, float]:
        leases = self._leases.setdefault(subject, {})
        for lease_id in [lid for lid, expiry in leases.items() if expiry <= now]:
            del leases[lease_id]
        return leases

    def _tat_of(self, kind: Kind, subject: str, now: float, window: float) -> float:
        tat = self._tat.get((kind, subject))
        if tat is None:
            tat = now if self._start is None else self._start(kind, subject, now, window)
        return tat

    def forget_rates(self) -> None:
        """Drop every rate bucket (the fallback's, once Redis is back: the next outage starts afresh)."""
        self._tat.clear()

    def _maybe_prune(self, now: float) -> None:
        self._ops += 1
        # With a start function a missing entry is not a whole quota, so nothing may be dropped;
        # the fallback's entries are bounded by the keys used during one outage.
        if self._start is None and self._ops % PRUNE_EVERY == 0:
            # A TAT in the past means a whole quota: the same as no entry.
            self._tat = {key: tat for key, tat in self._tat.items() if tat > now}

    def quotas(self, subject: str, rpm: int | None, tpm: int | None, window: float) -> tuple[Quota, ...]:
        """The current quotas without charging (for tests and introspection)."""
        now = self._clock()
        specs: tuple[tuple[Kind, int | None], ...] = (("rpm", rpm), ("tpm", tpm))
        return tuple(
            gcra(kind, self._tat_of(kind, subject, now, window), now, limit, window, 0).quota
            for kind, limit in specs
            if limit is not None
        )
