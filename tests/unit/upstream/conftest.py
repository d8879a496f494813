"""Upstream fixtures: emulator fleets on loopback and pools over them, closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest

from gateway.upstream.client import UpstreamClient
from gateway.upstream.pool import ReplicaPool
from tests.unit.upstream.fleet import Fleet, make_settings


@pytest.fixture
def fleet_factory() -> Iterator[Callable[..., Fleet]]:
    fleets: list[Fleet] = []

    def make(count: int, **config: Any) -> Fleet:
        fleet = Fleet(count, **config)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.close()


@pytest.fixture
async def pool_factory() -> AsyncIterator[Callable[..., ReplicaPool]]:
    """``pool_factory(urls, **settings)`` -> a ReplicaPool (not started) on a shared httpx client."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=0.5))
    pools: list[ReplicaPool] = []

    def make(urls: list[str], *, resolver: Any = None, clock: Any = None, **overrides: Any) -> ReplicaPool:
        extra: dict[str, Any] = {}
        if clock is not None:
            extra["clock"] = clock
        pool = ReplicaPool(make_settings(urls, **overrides), http, resolver=resolver, **extra)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.aclose()
    await http.aclose()


@pytest.fixture
async def client_factory(
    pool_factory: Callable[..., ReplicaPool],
) -> AsyncIterator[Callable[..., UpstreamClient]]:
    sessions: list[aiohttp.ClientSession] = []

    def make(urls: list[str], **overrides: Any) -> UpstreamClient:
        pool = pool_factory(urls, upstream_model="qwen3-vl-8b", **overrides)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return UpstreamClient(pool.settings, session, pool)

    yield make
    for session in sessions:
        await session.close()
