"""Live fan-out of one stream to every identical request: a buffer the producer appends to.

One producer (the task reading the upstream) appends items; each subscriber iterates from the
first item, so one that joins late replays what is buffered and then continues live. The end is
either ``close(answer)`` (complete, or cut short with ``None``) or ``fail(exc)``, which every
subscriber raises when it reaches it. When the last subscriber leaves before the end, the
``on_abandoned`` callback runs: the producer stops, so no upstream work is done for nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

from gateway.cache.model import CachedAnswer

T = TypeVar("T")
OnClose = Callable[[CachedAnswer | None], Awaitable[None]]


class Broadcast(Generic[T]):
    """An append-only list of items with any number of readers, each from the start."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.closed = False
        self.error: Exception | None = None
        self.answer: CachedAnswer | None = None
        self.subscribers = 0
        self.on_abandoned: Callable[[], object] | None = None
        self._changed = asyncio.Event()
        self._on_close: list[OnClose] = []
        self._finished = False  # close() ran: callbacks registered from now on run at once

    @classmethod
    def complete(cls, items: list[T], answer: CachedAnswer) -> Broadcast[T]:
        """A broadcast that is already over (a stored answer, replayed)."""
        done: Broadcast[T] = cls()
        done.items = items
        done.closed = done._finished = True
        done.answer = answer
        return done

    def append(self, item: T) -> None:
        self.items.append(item)
        self._wake()

    def fail(self, exc: Exception) -> None:
        """End with an error every reader raises when it reaches the end of the items."""
        self.error = exc
        self.closed = True
        self._wake()

    async def close(self, answer: CachedAnswer | None) -> None:
        """End the items; ``answer`` is the complete answer, or None when it was cut short."""
        if self.error is None:
            self.answer = answer
        self.closed = self._finished = True
        self._wake()
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            await callback(self.answer)

    async def when_closed(self, callback: OnClose) -> None:
        """Run ``callback(answer)`` at the end (at once when the broadcast is over already)."""
        if self._finished:
            await callback(self.answer)
        else:
            self._on_close.append(callback)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def subscribe(self) -> AsyncGenerator[T, None]:
        """A reader from the first item; counted from now, released when the iterator is closed."""
        self.subscribers += 1
        return self._read()

    async def _read(self) -> AsyncGenerator[T, None]:
        index = 0
        try:
            while True:
                while index < len(self.items):
                    item = self.items[index]
                    index += 1
                    yield item
                if self.closed:
                    if self.error is not None:
                        raise self.error
                    return
                await self._changed.wait()
        finally:
            self.subscribers -= 1
            if self.subscribers == 0 and not self.closed and self.on_abandoned is not None:
                self.on_abandoned()
