"""Admission control: a bounded FIFO queue for requests that find every replica at its cap.

A request that finds room is never queued (the pool hands it a replica at once). One that finds
every eligible replica at ``upstream_max_inflight`` waits here, first come first served, for at
most ``upstream_queue_timeout``; when the queue already holds ``upstream_queue_size`` the request
is shed at once with 503 and ``Retry-After``: a fast, honest answer beats a slow timeout when
the GPUs are saturated.

Slots are handed over, not raced for: whenever capacity may have appeared (a lease ends, a
replica comes back) the pool calls :meth:`AdmissionQueue.dispatch`, which grants replicas to
waiters in order before any newcomer can take them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway import errors
from gateway.upstream.replica import Replica

MIN_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 30.0

# Tries to reserve a replica for (affinity, exclude): the replica (already counted in flight),
# None when all are at their cap, or raises ServiceUnavailable when none is eligible at all.
Grant = Callable[[str | None, frozenset[str]], Replica | None]


class QueueFull(Exception):
    """The queue is at ``upstream_queue_size`` (or queueing is off)."""


@dataclass(slots=True, eq=False)
class _Waiter:
    affinity: str | None
    exclude: frozenset[str]
    future: asyncio.Future[Replica]


class AdmissionQueue:
    """FIFO waiters for a replica slot; ``release`` gives back a slot a waiter can no longer use."""

    def __init__(self, size: int, timeout: float, release: Callable[[Replica], None]) -> None:
        self.size = size
        self.timeout = timeout
        self._release = release
        self._waiters: deque[_Waiter] = deque()

    def __len__(self) -> int:
        return len(self._waiters)

    async def wait(
        self, affinity: str | None, exclude: frozenset[str], max_wait: float | None = None
    ) -> Replica:
        """Wait for a slot; raises QueueFull at once, TimeoutError after the queue timeout."""
        limit = self.timeout if max_wait is None else min(self.timeout, max_wait)
        if len(self._waiters) >= self.size or limit <= 0:
            raise QueueFull
        waiter = _Waiter(affinity, exclude, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await asyncio.wait((waiter.future,), timeout=limit)
        except BaseException:
            self._abandon(waiter)  # cancelled: give back a slot granted in the meantime
            raise
        if not waiter.future.done():
            self._abandon(waiter)
            raise TimeoutError
        return waiter.future.result()  # a replica, or the ServiceUnavailable dispatch set

    def dispatch(self, grant: Grant) -> None:
        """Grant free slots to waiters in arrival order."""
        for waiter in list(self._waiters):
            if waiter.future.done():
                self._discard(waiter)
                continue
            try:
                replica = grant(waiter.affinity, waiter.exclude)
            except errors.ServiceUnavailable as exc:
                # Nothing eligible any more (all ejected or unhealthy): fail fast, do not wait it out.
                self._discard(waiter)
                waiter.future.set_exception(exc)
                continue
            if replica is None:
                if not waiter.exclude:
                    return  # no room for anyone: later waiters cannot do better
                continue  # a retry that excludes replicas; someone behind it may fit
            self._discard(waiter)
            waiter.future.set_result(replica)

    def fail_all(self, exc: errors.ServiceUnavailable) -> None:
        """Fail every waiter (the pool is closing)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(exc)

    def _discard(self, waiter: _Waiter) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _abandon(self, waiter: _Waiter) -> None:
        self._discard(waiter)
        future = waiter.future
        if not future.done():
            future.cancel()
        elif not future.cancelled() and future.exception() is None:
            self._release(future.result())


def shed_retry_after(queue_timeout: float) -> float:
    """Retry-After for a request shed because every replica is at its cap."""
    return min(max(queue_timeout, MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def unavailable(
    replicas: Sequence[Replica], now: float, exclude: frozenset[str], fallback: float
) -> errors.ServiceUnavailable:
    """The 503 when no replica may take a request, with Retry-After at the soonest one may again."""
    candidates = [r for r in replicas if r.name not in exclude]
    if not candidates:
        message = "no other upstream replica to try" if exclude else "no upstream replica configured"
        return errors.ServiceUnavailable(message, retry_after=MIN_RETRY_AFTER)
    waits = [r.overloaded_until - now for r in candidates if r.healthy and r.overloaded_until > now]
    waits += [r.ejected_until - now for r in candidates if r.healthy and r.ejected_until is not None]
    soonest = min(waits, default=fallback)  # fallback: the next health check
    if all(r.healthy and r.overloaded_until > now for r in candidates):
        message = "every upstream replica is overloaded"
    else:
        message = "no healthy upstream replica"
    return errors.ServiceUnavailable(message, retry_after=min(max(soonest, MIN_RETRY_AFTER), MAX_RETRY_AFTER))
