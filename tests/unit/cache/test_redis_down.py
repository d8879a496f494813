"""Redis stops: the cache is bypassed (never an error for the caller), then comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from gateway.cache import IdempotencyStore, RedisCacheBackend, ResponseCache
from gateway.store.redis import ResilientRedis
from tests.servers import RedisServer
from tests.unit.cache.conftest import Counter, answer, sample

KEY = "1" * 64


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
async def client(own_redis: RedisServer) -> AsyncIterator[ResilientRedis]:
    redis = ResilientRedis(own_redis.url, timeout=0.5, breaker_failures=3, breaker_reset_seconds=0.2)
    yield redis
    await redis.aclose()


async def test_redis_down_bypasses_the_cache_then_recovers(
    own_redis: RedisServer, client: ResilientRedis
) -> None:
    cache = ResponseCache(RedisCacheBackend(client), ttl=60, coalesce_timeout=5)
    await cache.get_or_compute(KEY, Counter(answer("before")))
    own_redis.stop()

    bypassed = sample("gateway_cache_requests_total", {"result": "bypass"})
    for _ in range(5):  # errors first, then the open breaker: neither reaches the caller
        compute = Counter(answer("during"))
        assert await cache.get_or_compute(KEY, compute) == (compute.result, "BYPASS")
        assert compute.calls == 1
    assert sample("gateway_cache_requests_total", {"result": "bypass"}) == bypassed + 5
    assert client.degraded

    # In-process coalescing does not need Redis.
    compute = Counter(delay=0.05)
    results = await asyncio.gather(*(cache.get_or_compute(KEY, compute) for _ in range(20)))
    assert compute.calls == 1 and {r[1] for r in results} == {"BYPASS", "COALESCED"}

    own_redis.start()  # same port, empty: the old answer is gone with the process
    status = "BYPASS"
    for _ in range(100):
        _, status = await cache.get_or_compute(KEY, Counter(answer("after")))
        if status != "BYPASS":
            break
        await asyncio.sleep(0.1)
    assert status == "MISS"
    stored = await cache.get(KEY)
    assert stored is not None and stored.text == "after"
    assert (await cache.get_or_compute(KEY, Counter()))[1] == "HIT"


async def test_idempotency_store_down_runs_the_request_once(
    own_redis: RedisServer, client: ResilientRedis
) -> None:
    store = IdempotencyStore(RedisCacheBackend(client), ttl=60, wait_timeout=5)
    own_redis.stop()
    compute = Counter()
    answer_, replayed = await store.run(owner="a", idempotency_key="k", body_hash="b", compute=compute)
    assert (answer_, replayed, compute.calls) == (compute.result, False, 1)
