"""Admission: the per-replica cap, the bounded FIFO queue, fast shedding, no-replica answers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest

from gateway import errors
from gateway.upstream.pool import ReplicaPool

URLS = ["http://10.9.0.1:8000", "http://10.9.0.2:8000"]
PoolFactory = Callable[..., ReplicaPool]


async def test_lease_counts_inflight_and_releases(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS)
    async with pool.lease() as first, pool.lease() as second:
        assert {first.name, second.name} == {"r0", "r1"}  # P2C spreads two leases over two idle replicas
        assert first.inflight == second.inflight == 1
    assert all(r.inflight == 0 for r in pool.replicas)


async def test_exclude_skips_replicas(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS)
    for _ in range(20):
        async with pool.lease(exclude=frozenset({"r0"})) as replica:
            assert replica.name == "r1"


async def test_excluding_every_replica_is_unavailable(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS)
    with pytest.raises(errors.ServiceUnavailable) as caught:
        async with pool.lease(exclude=frozenset({"r0", "r1"})):
            pass
    assert caught.value.retry_after is not None


async def test_waits_for_a_slot_in_fifo_order(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS[:1], upstream_max_inflight=1, upstream_queue_size=5, upstream_queue_timeout=5)
    order: list[int] = []
    gate = asyncio.Event()

    async def user(number: int) -> None:
        async with pool.lease():
            order.append(number)
            await gate.wait()

    first = asyncio.create_task(user(0))
    await asyncio.sleep(0.01)
    waiters = []
    for number in range(1, 4):
        waiters.append(asyncio.create_task(user(number)))
        await asyncio.sleep(0.01)
    assert order == [0] and pool.queued == 3
    gate.set()
    await asyncio.gather(first, *waiters)
    assert order == [0, 1, 2, 3]
    assert pool.queued == 0 and pool.replicas[0].inflight == 0


async def test_full_queue_sheds_at_once_without_waiting(pool_factory: PoolFactory) -> None:
    queue_timeout = 4.0
    pool = pool_factory(
        URLS[:1], upstream_max_inflight=1, upstream_queue_size=1, upstream_queue_timeout=queue_timeout
    )
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(pool.lease())
        queued = asyncio.create_task(stack.enter_async_context(pool.lease()))
        await asyncio.sleep(0.01)
        assert pool.queued == 1
        started = time.monotonic()
        with pytest.raises(errors.ServiceUnavailable) as caught:
            async with pool.lease():
                pass
        assert time.monotonic() - started < queue_timeout / 2  # shed, not queued
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1
        queued.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await queued
    assert pool.queued == 0


async def test_queue_timeout_answers_503(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS[:1], upstream_max_inflight=1, upstream_queue_size=4, upstream_queue_timeout=0.05)
    async with pool.lease():
        with pytest.raises(errors.ServiceUnavailable, match="timed out"):
            async with pool.lease():
                pass
    assert pool.queued == 0


async def test_zero_queue_sheds_immediately(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS[:1], upstream_max_inflight=1, upstream_queue_size=0)
    async with pool.lease():
        with pytest.raises(errors.ServiceUnavailable, match="capacity"):
            async with pool.lease():
                pass


async def test_cancelled_waiter_leaves_no_slot_taken(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS[:1], upstream_max_inflight=1, upstream_queue_size=4, upstream_queue_timeout=5)
    async with pool.lease():
        waiter = asyncio.create_task(pool.lease().__aenter__())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
    assert pool.queued == 0 and pool.replicas[0].inflight == 0
    async with pool.lease() as replica:  # the slot is usable again
        assert replica.inflight == 1


async def test_no_healthy_replica_is_unavailable_without_queueing(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS)
    for replica in pool.replicas:
        replica.healthy = False
    with pytest.raises(errors.ServiceUnavailable, match="no healthy upstream") as caught:
        async with pool.lease():
            pass
    assert caught.value.retry_after is not None
    assert pool.queued == 0


async def test_waiters_fail_fast_when_the_last_replica_goes(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS[:1], upstream_max_inflight=1, upstream_queue_size=4, upstream_queue_timeout=5)
    async with pool.lease() as held:
        waiter = asyncio.create_task(pool.lease().__aenter__())
        await asyncio.sleep(0.01)
        held.healthy = False
        pool.report(held, "connect_error")  # any state change re-runs admission
        with pytest.raises(errors.ServiceUnavailable, match="no healthy"):
            await waiter


async def test_overloaded_replica_is_avoided_until_retry_after(pool_factory: PoolFactory) -> None:
    now = [100.0]
    pool = pool_factory(URLS, clock=lambda: now[0])
    r0 = pool.replicas[0]
    pool.report(r0, "overloaded", retry_after=5)
    for _ in range(20):
        async with pool.lease() as replica:
            assert replica.name == "r1"
    assert r0.consecutive_failures == 0  # overload is not a failure
    pool.report(pool.replicas[1], "overloaded", retry_after=3)
    with pytest.raises(errors.ServiceUnavailable, match="overloaded") as caught:
        async with pool.lease():
            pass
    assert caught.value.retry_after == 3
    now[0] += 5
    seen = set()
    for _ in range(20):
        async with pool.lease() as replica:
            seen.add(replica.name)
    assert seen == {"r0", "r1"}
