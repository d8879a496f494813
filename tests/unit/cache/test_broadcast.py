"""The live fan-out buffer: late readers replay then follow, errors reach every reader, the last
reader leaving stops the producer."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache.broadcast import Broadcast
from tests.unit.cache.conftest import answer


async def test_a_late_reader_replays_then_follows_live() -> None:
    feed: Broadcast[bytes | None] = Broadcast()
    early = feed.subscribe()
    feed.append(b"a")
    assert await anext(early) == b"a"
    feed.append(b"b")
    late = feed.subscribe()
    assert [await anext(late), await anext(late)] == [b"a", b"b"]  # replayed what it missed
    waiting = asyncio.ensure_future(anext(late))
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing new yet: it waits, live
    feed.append(b"c")
    assert await waiting == b"c"
    await feed.close(answer("abc"))
    assert [item async for item in early] == [b"b", b"c"]
    assert [item async for item in late] == []


async def test_an_error_reaches_every_reader_after_the_items() -> None:
    feed: Broadcast[bytes | None] = Broadcast()
    reader = feed.subscribe()
    feed.append(b"a")
    feed.fail(RuntimeError("upstream broke"))
    assert await anext(reader) == b"a"
    with pytest.raises(RuntimeError, match="upstream broke"):
        await anext(reader)
    late: list[bytes | None] = []
    with pytest.raises(RuntimeError):
        async for item in feed.subscribe():
            late.append(item)
    assert late == [b"a"]


async def test_the_last_reader_leaving_early_abandons_the_producer() -> None:
    feed: Broadcast[bytes | None] = Broadcast()
    abandoned: list[bool] = []
    feed.on_abandoned = lambda: abandoned.append(True)
    first, second = feed.subscribe(), feed.subscribe()
    feed.append(b"a")
    assert await anext(first) == await anext(second) == b"a"
    await first.aclose()
    assert abandoned == []  # someone still follows
    await second.aclose()
    assert abandoned == [True]


async def test_close_callbacks_run_once_with_the_answer_even_when_registered_late() -> None:
    feed: Broadcast[bytes | None] = Broadcast()
    seen: list[object] = []

    async def note(result: object) -> None:
        seen.append(result)

    await feed.when_closed(note)
    done = answer("x")
    await feed.close(done)
    await feed.when_closed(note)
    assert seen == [done, done]
    failed: Broadcast[bytes | None] = Broadcast()
    await failed.when_closed(note)
    failed.fail(RuntimeError("x"))
    await failed.close(answer("ignored"))  # a failed stream has no complete answer
    assert seen[-1] is None
