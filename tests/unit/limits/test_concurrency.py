"""Concurrency slots: leases released on every exit path, renewed while held, expiring when a holder dies."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import ConcurrencyLimited
from tests.unit.limits.conftest import principal, slot


async def test_slots_up_to_the_limit_then_42903(make_limiter) -> None:
    limiter = make_limiter()
    p = principal("conc", concurrency=2)
    async with slot(limiter, p), slot(limiter, p):
        with pytest.raises(ConcurrencyLimited) as err:
            async with slot(limiter, p):
                pass
        assert err.value.code == 42903 and err.value.retry_after_seconds == 1
        assert "2 requests in flight" in err.value.message
    async with slot(limiter, p), slot(limiter, p):
        pass  # both came back


async def test_slot_is_released_when_the_block_raises(make_limiter) -> None:
    limiter = make_limiter()
    p = principal("conc-raise", concurrency=1)
    with pytest.raises(RuntimeError):
        async with slot(limiter, p):
            raise RuntimeError("upstream blew up")
    async with slot(limiter, p):
        pass


async def test_slot_is_released_when_the_holder_is_cancelled(make_limiter) -> None:
    limiter = make_limiter()
    p = principal("conc-cancel", concurrency=1)
    entered = asyncio.Event()

    async def client_request() -> None:
        async with slot(limiter, p):
            entered.set()
            await asyncio.sleep(60)  # a long stream the client walks away from

    task = asyncio.create_task(client_request())
    await entered.wait()
    with pytest.raises(ConcurrencyLimited):
        await limiter.acquire(p)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with slot(limiter, p):
        pass


async def test_lease_is_renewed_while_held(make_limiter) -> None:
    limiter = make_limiter(lease_seconds=0.3)
    p = principal("conc-renew", concurrency=1)
    async with slot(limiter, p):
        await asyncio.sleep(0.8)  # well past the TTL: only renewals keep the slot
        with pytest.raises(ConcurrencyLimited):
            await limiter.acquire(p)


async def test_a_dead_holders_slot_expires_after_the_lease_ttl(make_limiter) -> None:
    dying = make_limiter(lease_seconds=0.3)
    survivor = make_limiter(lease_seconds=0.3)
    p = principal("conc-dead", concurrency=1)
    lease = await dying.acquire(p)
    lease.abandon()  # the process died: no renewal, no release
    with pytest.raises(ConcurrencyLimited):
        await survivor.acquire(p)
    await asyncio.sleep(0.4)
    lease2 = await survivor.acquire(p)
    await lease2.release()
    await lease2.release()  # idempotent


async def test_concurrency_limit_is_global_across_limiters_on_one_redis(make_limiter) -> None:
    a, b = make_limiter(), make_limiter()
    p = principal("conc-global", concurrency=1)
    async with slot(a, p):
        with pytest.raises(ConcurrencyLimited):
            await b.acquire(p)
    async with slot(b, p):
        pass
