"""Admission for shared intake resources: fair slots per owner, and a budget in bytes.

``FairSlots`` hands out ``capacity`` slots, at most ``per_owner`` to one owner (an API key's
name), and when slots free up it serves the waiting owners in turn (round robin), not in
arrival order: a key that queues 24 slow URLs waits behind its own requests, not in front of
everyone else's. ``ByteBudget`` admits work by the memory it will need, first come first served.
Both wait at most until the caller's deadline (event-loop time).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class FairSlots:
    """``capacity`` slots shared round robin between owners, at most ``per_owner`` each."""

    def __init__(self, capacity: int, per_owner: int) -> None:
        self.capacity = capacity
        self.per_owner = max(1, min(per_owner, capacity))
        self.busy = 0
        self._held: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}  # insertion order = turn order

    def held(self, owner: str) -> int:
        return self._held.get(owner, 0)

    async def acquire(self, owner: str, deadline: float) -> None:
        """Take a slot for ``owner``; TimeoutError when none was free by ``deadline``."""
        if self.busy < self.capacity and self.held(owner) < self.per_owner and owner not in self._waiting:
            self._grant(owner)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(owner, deque()).append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(owner)  # granted just as the wait ended: give it back
            else:
                waiter.cancel()
                self._forget(owner, waiter)
            raise

    def release(self, owner: str) -> None:
        self.busy -= 1
        left = self._held[owner] - 1
        if left:
            self._held[owner] = left
        else:
            del self._held[owner]
        self._dispatch()

    def _grant(self, owner: str) -> None:
        self.busy += 1
        self._held[owner] = self.held(owner) + 1

    def _forget(self, owner: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(owner)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
            if not queue:
                del self._waiting[owner]
        self._dispatch()

    def _dispatch(self) -> None:
        while self.busy < self.capacity:
            owner = next((o for o in self._waiting if self.held(o) < self.per_owner), None)
            if owner is None:
                return
            queue = self._waiting.pop(owner)  # re-inserted at the end: the next owner goes first
            waiter = queue.popleft()
            if queue:
                self._waiting[owner] = queue
            if not waiter.done():
                self._grant(owner)
                waiter.set_result(None)


class ByteBudget:
    """A semaphore counted in bytes: work waits until the memory it needs is free."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.free = capacity
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, size: int, deadline: float) -> None:
        """Reserve ``size`` bytes; TimeoutError when they were not free by ``deadline``."""
        if size > self.capacity:
            raise ValueError(f"{size} bytes can never fit a budget of {self.capacity}")
        if not self._waiting and self.free >= size:
            self.free -= size
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiting.append(entry)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(size)
            else:
                waiter.cancel()
                self._waiting.remove(entry)
                self._wake()
            raise

    def release(self, size: int) -> None:
        self.free += size
        self._wake()

    def _wake(self) -> None:
        # First come, first served: a large request at the head is not overtaken for ever by
        # small ones behind it.
        while self._waiting and self._waiting[0][0] <= self.free:
            size, waiter = self._waiting.popleft()
            if not waiter.done():
                self.free -= size
                waiter.set_result(None)
