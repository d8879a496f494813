"""``last_used_at`` of keys, written cheaply: at most once a minute per key, in batches.

Every use of a key in a process is noted in memory; the first use of a key in each
``interval`` queues its time, and queued times go to the store in one call (``touch_many``: one
Redis pipeline or one SQLite transaction) ``flush_after`` seconds later, and at shutdown. The
store only moves ``last_used_at`` forward, so replicas flushing out of order are harmless; a
failed write is dropped (it is a convenience for operators, not an audit log).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from gateway.auth.store import KeyStore
from gateway.store.redis import StoreUnavailable

TOUCH_INTERVAL_SECONDS = 60.0
TOUCH_FLUSH_SECONDS = 5.0


class LastUsed:
    """Batches ``last_used_at`` writes of one process."""

    def __init__(
        self,
        store: KeyStore,
        *,
        interval: float = TOUCH_INTERVAL_SECONDS,
        flush_after: float = TOUCH_FLUSH_SECONDS,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.interval = interval
        self.flush_after = flush_after
        self.max_keys = max_keys
        self._clock = clock
        self._wall = wall
        self._noted: dict[str, float] = {}  # key hash -> monotonic time of the last queued use
        self._pending: dict[str, float] = {}  # key hash -> unix time to write
        self._flusher: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def note(self, key_hash: str) -> None:
        """A request used this key (called on every authenticated request: a dict lookup)."""
        now = self._clock()
        if now - self._noted.get(key_hash, -self.interval) < self.interval:
            return
        if len(self._noted) >= self.max_keys:
            self._noted.clear()
        self._noted[key_hash] = now
        self._pending[key_hash] = self._wall()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), self.flush_after)
        await self.flush()

    async def flush(self) -> None:
        """Write the queued times in one store call (a failure drops them)."""
        batch, self._pending = self._pending, {}
        if batch:
            with contextlib.suppress(StoreUnavailable):
                await self.store.touch_many(batch)

    async def aclose(self) -> None:
        """Write what is queued now (shutdown)."""
        self._closing.set()
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self.flush()
        self._closing.clear()
