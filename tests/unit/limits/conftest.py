"""Limiter fixtures: every limits test runs on the embedded (in-process) and Redis backends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.auth import Limits, Principal
from gateway.limits import Lease, LimitDecision, Limiter
from tests.unit.store.helpers import own_redis, resilient

__all__ = ["own_redis"]

LimiterFactory = Callable[..., Limiter]


@pytest.fixture(params=["embedded", "redis"])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[LimiterFactory]:
    """Makes limiters sharing one backing state (for Redis: separate clients, like separate replicas)."""
    clients = []
    shared_local: list[Limiter] = []

    def make(**kw: Any) -> Limiter:
        if request.param == "redis":
            client = resilient(request.getfixturevalue("redis_url"))
            clients.append(client)
            return Limiter(client, **kw)
        limiter = Limiter(None, **kw)
        if shared_local:  # in-process state is per process: share the backend to model "one process"
            limiter.primary = shared_local[0].primary
        shared_local.append(limiter)
        return limiter

    make.backend = request.param  # type: ignore[attr-defined]
    yield make
    for client in clients:
        await client.aclose()


def principal(name: str = "app", **limits: int) -> Principal:
    return Principal(name=name, key_id="vlgw_abcdef", limits=Limits(**limits))


async def check(limiter: Limiter, principal: Principal, estimated_tokens: int = 0) -> LimitDecision:
    """Charge one request's rates as the gate does before every request; a refusal raises."""
    decision = await limiter.evaluate(principal, estimated_tokens)
    refusal = decision.error()
    if refusal is not None:
        raise refusal
    return decision


@contextlib.asynccontextmanager
async def slot(limiter: Limiter, principal: Principal) -> AsyncIterator[Lease | None]:
    """Hold a concurrency slot for the block, released on every exit as the gate's Slot does."""
    lease = await limiter.acquire(principal)
    try:
        yield lease
    finally:
        if lease is not None:
            await lease.release()
