"""Streams in the cache: identical streams share one live broadcast, a stored answer is replayed,
the complete answer is stored and handed to JSON callers waiting on the same key."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache import CacheMode, IdempotencyStore, ResponseCache
from gateway.cache.broadcast import Broadcast
from gateway.cache.model import CachedAnswer
from gateway.errors import IdempotencyConflict
from tests.unit.cache.conftest import BackendFactory, answer


def replay(done: CachedAnswer) -> list[bytes | None]:
    return [done.text.encode()]


def cache_on(new_backend: BackendFactory) -> ResponseCache:
    return ResponseCache(new_backend(), ttl=60, coalesce_timeout=5)


async def test_identical_streams_follow_the_leaders_broadcast(new_backend: BackendFactory) -> None:
    cache = cache_on(new_backend)
    lead, status = await cache.join_stream("k", mode=CacheMode.USE, replay=replay)
    assert lead.leads and status == "MISS"
    feed: Broadcast[bytes | None] = Broadcast()
    await lead.lead(feed)
    feed.append(b"tok")
    follow, status = await cache.join_stream("k", mode=CacheMode.USE, replay=replay)
    assert not follow.leads and status == "COALESCED" and follow.broadcast is feed
    # A JSON caller of the same key waits for the complete answer (no second upstream call).
    calls = 0

    async def compute() -> CachedAnswer:
        nonlocal calls
        calls += 1
        return answer()

    waiting = asyncio.ensure_future(cache.get_or_compute("k", compute))
    await asyncio.sleep(0.05)
    done = answer("tok")
    await feed.close(done)
    got, json_status = await waiting
    assert (got.text, json_status, calls) == ("tok", "COALESCED", 0)
    # Stored: the next stream replays it.
    later, status = await cache.join_stream("k", mode=CacheMode.USE, replay=replay)
    assert status == "HIT" and later.broadcast is not None
    assert [item async for item in later.broadcast.subscribe()] == [b"tok"]


async def test_a_cut_short_stream_is_not_stored_and_the_next_caller_leads(
    new_backend: BackendFactory,
) -> None:
    cache = cache_on(new_backend)
    lead, _ = await cache.join_stream("k", mode=CacheMode.USE, replay=replay)
    feed: Broadcast[bytes | None] = Broadcast()
    await lead.lead(feed)
    await feed.close(None)
    again, status = await cache.join_stream("k", mode=CacheMode.USE, replay=replay)
    assert again.leads and status == "MISS"


async def test_a_failed_leader_fails_waiting_stream_callers(new_backend: BackendFactory) -> None:
    cache = cache_on(new_backend)
    lead, _ = await cache.join_stream("k", mode=CacheMode.USE, replay=replay)
    feed: Broadcast[bytes | None] = Broadcast()
    await lead.lead(feed)
    follower, _ = await cache.join_stream("k", mode=CacheMode.USE, replay=replay)
    assert follower.broadcast is not None
    reader = follower.broadcast.subscribe()
    feed.fail(RuntimeError("upstream 500"))
    await feed.close(None)
    with pytest.raises(RuntimeError, match="upstream 500"):
        await anext(reader)


async def test_refresh_stores_without_looking_up(new_backend: BackendFactory) -> None:
    cache = cache_on(new_backend)
    await cache.store("k", answer("old"))
    lead, status = await cache.join_stream("k", mode=CacheMode.REFRESH, replay=replay)
    assert lead.leads and status == "MISS"
    feed: Broadcast[bytes | None] = Broadcast()
    await lead.lead(feed)
    await feed.close(answer("new"))
    stored = await cache.get("k")
    assert stored is not None and stored.text == "new"


async def test_a_retried_stream_joins_or_replays_its_first_attempt(new_backend: BackendFactory) -> None:
    store = IdempotencyStore(new_backend(), ttl=60, wait_timeout=5)
    first = await store.join_stream(owner="o", idempotency_key="r1", body_hash="h", replay=replay)
    assert first.leads
    feed: Broadcast[bytes | None] = Broadcast()
    await first.lead(feed)
    live = await store.join_stream(owner="o", idempotency_key="r1", body_hash="h", replay=replay)
    assert live.status == "LIVE" and live.broadcast is feed
    with pytest.raises(IdempotencyConflict):
        await store.join_stream(owner="o", idempotency_key="r1", body_hash="other", replay=replay)
    await feed.close(answer("first"))
    again = await store.join_stream(owner="o", idempotency_key="r1", body_hash="h", replay=replay)
    assert again.broadcast is not None and again.answer is not None and again.answer.text == "first"
    with pytest.raises(IdempotencyConflict):
        await store.join_stream(owner="o", idempotency_key="r1", body_hash="other", replay=replay)
