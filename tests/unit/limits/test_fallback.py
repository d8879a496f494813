"""Redis failure policy: local buckets at limit / replicas, or open, or closed; automatic recovery.

Each test has its own redis-server (``own_redis``) because it pauses or stops it.
"""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from gateway.errors import ConcurrencyLimited, RequestRateLimited, ServiceUnavailable
from gateway.limits import Limiter
from tests.unit.limits.conftest import principal
from tests.unit.store.helpers import resilient, wait_recovered


def degraded() -> float | None:
    return REGISTRY.get_sample_value("gateway_redis_degraded")


async def test_stopped_redis_falls_back_to_local_limits_and_recovers(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, replicas=2)
    p = principal("fallback-stop", rpm=10, tpm=10_000)
    assert (await limiter.evaluate(p, 10)).backend == "redis"

    own_redis.stop()
    results = [await limiter.evaluate(p, 10) for _ in range(8)]
    assert sum(d.allowed for d in results) == 5  # ceil(10 rpm / 2 replicas)
    assert {d.backend for d in results} == {"fallback"}
    assert results[0].headers()["RateLimit-Limit"] == "5"
    assert degraded() == 1
    with pytest.raises(RequestRateLimited):
        await limiter.check(p)
    await limiter.reconcile(p, 10, 500)  # no exception escapes

    own_redis.start()
    await wait_recovered(client)
    assert degraded() == 0
    decision = await limiter.evaluate(p, 10)
    assert decision.backend == "redis" and decision.allowed
    await client.aclose()


async def test_paused_redis_times_out_into_the_fallback(own_redis) -> None:
    client = resilient(own_redis.url, timeout=0.1)
    limiter = Limiter(client, replicas=3)
    p = principal("fallback-pause", rpm=9, concurrency=3)
    own_redis.cli("CLIENT", "PAUSE", "2000", "ALL")
    results = [await limiter.evaluate(p) for _ in range(5)]
    assert sum(d.allowed for d in results) == 3 and {d.backend for d in results} == {"fallback"}
    async with limiter.concurrency(p):  # 1 local slot = ceil(3 / 3)
        with pytest.raises(ConcurrencyLimited):
            await limiter.acquire(p)
    await wait_recovered(client)
    assert (await limiter.evaluate(p)).backend == "redis"
    await client.aclose()


async def test_a_lease_taken_on_redis_survives_redis_going_away(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, lease_seconds=0.3)
    p = principal("fallback-lease", concurrency=1)
    async with limiter.concurrency(p):
        own_redis.stop()  # renewals and the release fail quietly; the lease would expire
    own_redis.start()
    await client.aclose()


async def test_open_policy_lets_everything_through_and_counts_it(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, fallback="open")
    p = principal("fallback-open", rpm=1, concurrency=1)
    own_redis.stop()
    before = REGISTRY.get_sample_value(
        "gateway_limit_decisions_total", {"kind": "rpm", "decision": "allowed_open", "key": p.name}
    )
    results = [await limiter.check(p) for _ in range(5)]
    assert all(d.allowed and d.backend == "open" for d in results)
    assert (
        REGISTRY.get_sample_value(
            "gateway_limit_decisions_total", {"kind": "rpm", "decision": "allowed_open", "key": p.name}
        )
        == (before or 0) + 5
    )
    async with limiter.concurrency(p), limiter.concurrency(p):
        pass
    await client.aclose()


async def test_closed_policy_refuses_with_50301(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, fallback="closed")
    p = principal("fallback-closed", rpm=100, concurrency=5)
    own_redis.stop()
    with pytest.raises(ServiceUnavailable) as err:
        await limiter.check(p)
    assert err.value.code == 50301 and err.value.retry_after_seconds == 1
    with pytest.raises(ServiceUnavailable):
        await limiter.acquire(p)
    await client.aclose()
