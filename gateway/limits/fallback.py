"""Keeping Redis-down limits near the truth: where a fallback bucket starts, and what it owes.

Two failures of naive local buckets while Redis is away (issue #13: a key limited to 120/min got
324 in 30 s):

* **They start full.** A key that had used its quota a second before the outage gets a whole
  new burst in every process. :class:`RateMemory` remembers, from every Redis reply, how full
  each key's buckets were (GCRA's arrival time, TAT); a fallback bucket starts from that state.
  A key this process has not seen within one window starts *empty* (it refills at this process's
  share of the rate), because other processes may have spent its quota; only a process that is
  the key's sole user (``processes == 1``) knows an unseen key was idle, and starts it full.
* **Redis never hears of them.** What the fallback admitted is charged to Redis once it answers
  again (:class:`FallbackDebts`), so the shared bucket does not grant the outage's admissions a
  second time.

Both use one fact about GCRA: a bucket's fill is ``(TAT - now) / window``, whatever its limit.
So the global TAT seeds a bucket sized to this process's share (``limit / processes``) at the
same fill, and the shares of all processes add up to what the global bucket had left.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.limits.decision import Kind

PRUNE_EVERY = 4096  # remembered replies between sweeps of stale entries


class RateMemory:
    """The last state Redis reported per (kind, key), on this process's monotonic clock."""

    def __init__(self, processes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.processes = processes
        self._clock = clock
        self._seen: dict[tuple[Kind, str], tuple[float, float]] = {}  # -> (tat, seen at)
        self._updates = 0

    def __len__(self) -> int:
        return len(self._seen)

    def remember(self, kind: Kind, subject: str, tat_offset: float, window: float) -> None:
        """Redis said the bucket is ``tat_offset`` seconds from whole (its TAT minus its now)."""
        now = self._clock()
        self._seen[(kind, subject)] = (now + tat_offset, now)
        self._updates += 1
        if self._updates % PRUNE_EVERY == 0:
            self._seen = {k: v for k, v in self._seen.items() if v[1] >= now - window}

    def start(self, kind: Kind, subject: str, now: float, window: float) -> float:
        """The TAT a fallback bucket starts from (see the module docstring)."""
        seen = self._seen.get((kind, subject))
        if seen is not None and seen[1] >= now - window:
            return seen[0]
        return now if self.processes == 1 else now + window


class FallbackDebts:
    """Units admitted by the fallback, per (kind, key), to charge to Redis when it is back."""

    def __init__(self) -> None:
        self._owed: dict[tuple[Kind, str], tuple[int, int]] = {}  # -> (limit, units)

    def __bool__(self) -> bool:
        return bool(self._owed)

    def add(self, kind: Kind, subject: str, limit: int, units: int) -> None:
        """Record ``units`` admitted (negative: refunded) under the key's whole ``limit``."""
        _, owed = self._owed.get((kind, subject), (limit, 0))
        self._owed[(kind, subject)] = (limit, owed + units)

    def take(self) -> list[tuple[Kind, str, int, int]]:
        """Everything owed, as (kind, key, limit, units); the ledger is empty afterwards."""
        owed, self._owed = self._owed, {}
        return [(kind, subject, limit, units) for (kind, subject), (limit, units) in owed.items() if units]
