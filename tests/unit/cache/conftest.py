"""Cache fixtures: every store test runs against the embedded backend and a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import REGISTRY

from gateway.cache import CacheBackend, CachedAnswer, MemoryCacheBackend, RedisCacheBackend
from gateway.store.redis import ResilientRedis
from gateway.upstream.wire import Usage

BackendFactory = Callable[[], CacheBackend]


@pytest.fixture(params=["memory", "redis"])
async def new_backend(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[BackendFactory]:
    """Makes backends over one shared store: each Redis one has its own client (as a separate
    gateway process would); the embedded ones are the same object (one process)."""
    clients: list[ResilientRedis] = []
    memory = MemoryCacheBackend(max_entries=1000, max_bytes=10_000_000)

    def make() -> CacheBackend:
        if request.param == "memory":
            return memory
        client = ResilientRedis(redis_url, timeout=1.0, breaker_failures=3, breaker_reset_seconds=0.2)
        clients.append(client)
        return RedisCacheBackend(client)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def backend(new_backend: BackendFactory) -> CacheBackend:
    return new_backend()


def answer(
    text: str = "a cat on a sofa", *, finish_reason: str | None = "stop", total: int = 73
) -> CachedAnswer:
    return CachedAnswer(
        text=text,
        finish_reason=finish_reason,
        usage=Usage(prompt_tokens=total - 45, completion_tokens=45, total_tokens=total),
        model="qwen3-vl-8b",
        created=time.time(),
    )


class Counter:
    """A compute function that counts its calls and can be held open."""

    def __init__(self, result: CachedAnswer | None = None, *, delay: float = 0.0) -> None:
        self.calls = 0
        self.result = result or answer()
        self.delay = delay

    async def __call__(self) -> CachedAnswer:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.result


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0
