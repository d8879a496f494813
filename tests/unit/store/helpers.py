"""Helpers shared by the store, auth and limits tests: ResilientRedis on a test server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from gateway.store.redis import ResilientRedis
from tests.servers import RedisServer


def resilient(url: str, *, timeout: float = 0.2, reset: float = 0.2) -> ResilientRedis:
    """A ResilientRedis with short timeouts, so outages show in tests quickly."""
    return ResilientRedis(url, timeout=timeout, breaker_failures=2, breaker_reset_seconds=reset)


async def wait_recovered(redis: ResilientRedis, timeout: float = 5.0) -> None:
    """Wait until the breaker has closed again (the background probe saw Redis answer)."""
    deadline = time.monotonic() + timeout
    while redis.degraded:
        if time.monotonic() > deadline:
            raise TimeoutError("redis did not recover")
        await asyncio.sleep(0.05)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A dedicated redis-server for tests that pause, stop or restart it."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
async def rredis(redis_url: str) -> AsyncIterator[ResilientRedis]:
    """ResilientRedis on a clean database of the shared server."""
    client = resilient(redis_url)
    yield client
    await client.aclose()
