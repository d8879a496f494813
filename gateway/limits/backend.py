"""The limiter's backend protocol and the rate algorithm it implements.

Rates use GCRA (the generic cell rate algorithm) with a cost: a quota of ``limit`` units per
``window`` seconds is a theoretical arrival time (TAT) that advances by ``cost * window / limit``
per request; a request passes when the new TAT is at most ``window`` ahead of now. That allows
a burst of ``limit`` units, then one unit every ``window / limit`` seconds, and tells exactly when
a refused request would pass. One TAT per (key, kind), so the state is one number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from gateway.limits.decision import Kind, Quota

EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class RateOutcome:
    allowed: bool
    quotas: tuple[Quota, ...]
    refused: Kind | None = None
    retry_after: float = 0.0


class LimitBackend(Protocol):
    """Where limit state lives: Redis (shared) or this process (local)."""

    name: str

    async def hit(
        self, subject: str, rpm: int | None, tpm: int | None, cost: int, window: float
    ) -> RateOutcome:
        """Check rpm (cost 1) and tpm (cost ``cost``) together; charge both only if both pass."""
        ...

    async def adjust(self, subject: str, limit: int, delta: int, window: float, kind: Kind = "tpm") -> None:
        """Charge (delta > 0) or refund (delta < 0) units of ``kind`` without refusing."""
        ...

    async def acquire(self, subject: str, limit: int, lease_id: str, ttl: float) -> bool:
        """Take a concurrency slot held until released or ``ttl`` seconds without renewal."""
        ...

    async def renew(self, subject: str, lease_id: str, ttl: float) -> None: ...

    async def release(self, subject: str, lease_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class GcraStep:
    allowed: bool
    new_tat: float  # the TAT to store when allowed
    retry_after: float
    quota: Quota


def gcra(kind: Kind, tat: float, now: float, limit: int, window: float, cost: int) -> GcraStep:
    """One GCRA step (times in seconds); the Lua scripts mirror this in milliseconds."""
    interval = window / limit
    tat = max(tat, now)
    new_tat = tat + cost * interval
    allow_at = new_tat - window
    if cost > limit:  # can never pass: say so with a full window
        return GcraStep(False, tat, window, _quota(kind, tat, now, limit, window, interval))
    if allow_at > now + EPSILON:
        return GcraStep(False, tat, allow_at - now, _quota(kind, tat, now, limit, window, interval))
    return GcraStep(True, new_tat, 0.0, _quota(kind, new_tat, now, limit, window, interval))


def _quota(kind: Kind, tat: float, now: float, limit: int, window: float, interval: float) -> Quota:
    remaining = max(0, min(limit, math.floor((window - (tat - now)) / interval + EPSILON)))
    return Quota(kind=kind, limit=limit, remaining=remaining, reset=max(0.0, tat - now), window=window)
