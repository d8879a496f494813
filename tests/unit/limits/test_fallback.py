"""Redis failure policy: local buckets that start from Redis's last state, or open, or closed.

Each test has its own redis-server (``own_redis``) because it pauses or stops it. Issue #13: a
key limited to 120/min got 324 in 30 s when Redis died, because fallback buckets started full;
these tests pin the fix (start from the last state Redis reported, unseen keys start empty when
other processes share the key, and Redis is charged for the outage's admissions when it is back).
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from gateway.errors import ConcurrencyLimited, ServiceUnavailable
from gateway.limits import Limiter
from gateway.limits.fallback import FallbackDebts, RateMemory
from gateway.limits.redis_backend import state_key
from gateway.settings import Settings
from tests.unit.limits.conftest import check, principal, slot
from tests.unit.store.helpers import resilient, wait_recovered


def degraded() -> float | None:
    return REGISTRY.get_sample_value("gateway_redis_degraded")


async def allowed(limiter: Limiter, name: str, n: int, **limits: int) -> int:
    p = principal(name, **limits)
    return sum([(await limiter.evaluate(p)).allowed for _ in range(n)])


# --- the pieces, on a fake clock ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_starts_a_bucket_from_the_remembered_state_within_one_window() -> None:
    clock = Clock()
    memory = RateMemory(processes=3, clock=clock)
    memory.remember("rpm", "k", 45.0, window=60)  # Redis: 45 s from whole, i.e. 3/4 used
    assert memory.start("rpm", "k", clock.now, 60) == 1045.0
    clock.now += 10
    assert memory.start("rpm", "k", clock.now, 60) == 1045.0  # refilled 10 s of it since
    clock.now += 55  # seen 65 s ago: other processes may have spent it all since
    assert memory.start("rpm", "k", clock.now, 60) == clock.now + 60


def test_an_unseen_key_starts_empty_unless_this_process_is_its_only_user() -> None:
    clock = Clock()
    assert RateMemory(processes=2, clock=clock).start("tpm", "new", clock.now, 60) == clock.now + 60
    assert RateMemory(processes=1, clock=clock).start("tpm", "new", clock.now, 60) == clock.now


def test_debts_add_up_per_kind_and_key_and_are_taken_once() -> None:
    debts = FallbackDebts()
    debts.add("rpm", "a", 10, 1)
    debts.add("rpm", "a", 10, 1)
    debts.add("tpm", "a", 1000, 300)
    debts.add("tpm", "a", 1000, -100)  # a refund after the answer
    debts.add("tpm", "b", 1000, 5)
    debts.add("tpm", "b", 1000, -5)  # nets to nothing: nothing to send
    assert sorted(debts.take()) == [("rpm", "a", 10, 2), ("tpm", "a", 1000, 200)]
    assert not debts and debts.take() == []


# --- against a real redis-server ------------------------------------------------------------------


async def test_a_key_that_used_its_quota_on_redis_gets_nothing_more_when_redis_dies(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, replicas=2)
    assert await allowed(limiter, "spent", 12, rpm=10) == 10  # on Redis
    own_redis.stop()
    refused = await limiter.evaluate(principal("spent", rpm=10))
    assert refused.backend == "fallback" and not refused.allowed
    assert refused.headers()["RateLimit-Limit"] == "5"  # this process's share: 10 rpm / 2
    assert 10 <= refused.retry_after <= 12  # one request per 60 / 5 s in this process
    assert await allowed(limiter, "spent", 10, rpm=10) == 0  # was 5 when buckets started full
    assert degraded() == 1
    await client.aclose()


async def test_a_half_used_key_gets_its_share_of_what_was_left(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, replicas=2)
    assert await allowed(limiter, "half", 4, rpm=10) == 4  # 6 of 10 left on Redis
    own_redis.stop()
    # This process's bucket of 5 starts 4/10 full: 3 of its 5 (two processes: 6 left in all).
    assert await allowed(limiter, "half", 10, rpm=10) == 3
    await client.aclose()


async def test_unseen_keys_start_empty_with_several_processes_and_full_with_one(own_redis) -> None:
    client = resilient(own_redis.url)
    shared, alone = Limiter(client, replicas=4), Limiter(client, replicas=1)
    own_redis.stop()
    assert await allowed(shared, "unseen-4", 20, rpm=40) == 0
    assert await allowed(alone, "unseen-1", 20, rpm=10) == 10
    await client.aclose()


async def test_the_fallback_share_counts_every_worker_of_every_replica(own_redis) -> None:
    settings = Settings(_env_file=None, redis_url=own_redis.url, replicas=2, workers=3)  # type: ignore[call-arg]
    client = resilient(own_redis.url)
    limiter = Limiter.from_settings(settings, client)
    own_redis.stop()
    decision = await limiter.evaluate(principal("six-processes", rpm=60))
    assert decision.backend == "fallback"
    assert decision.headers()["RateLimit-Limit"] == "10"  # 60 / (2 replicas x 3 workers)
    await client.aclose()


async def test_redis_is_charged_for_the_outage_when_it_comes_back(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, replicas=1)
    p = principal("repaid", rpm=10, tpm=10_000)
    own_redis.stop()
    results = [await limiter.evaluate(p, 500) for _ in range(6)]
    assert all(d.allowed and d.backend == "fallback" for d in results)
    await limiter.reconcile(p, 500, 100)  # one answer was smaller than its estimate
    own_redis.start()  # an empty Redis, as after losing its data
    await wait_recovered(client)
    back = await limiter.evaluate(p, 500)
    assert back.backend == "redis" and back.allowed
    # The six fallback requests (and 6 x 500 - 400 tokens) were charged before this one was
    # counted on the next call, so Redis now holds all of them.
    after = await limiter.evaluate(p, 500)
    rpm, tpm = after.quotas
    assert (rpm.kind, rpm.remaining) == ("rpm", 10 - 6 - 2)
    charged = (6 * 500 - 400) + 2 * 500
    assert tpm.kind == "tpm"  # tokens refill at 1 per 6 ms meanwhile: a few may be back
    assert 10_000 - charged <= tpm.remaining < 10_000 - charged + 100
    assert not limiter.debts
    await client.aclose()


async def test_a_second_outage_starts_from_redis_again_not_from_the_first_outages_buckets(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, replicas=1)
    assert await allowed(limiter, "twice", 11, rpm=10) == 10
    own_redis.stop()
    assert await allowed(limiter, "twice", 3, rpm=10) == 0  # the first outage: nothing left
    own_redis.start()  # empty: Redis forgot the key
    await wait_recovered(client)
    assert await allowed(limiter, "twice", 1, rpm=10) == 1  # Redis now says 1 of 10 used
    own_redis.stop()
    assert await allowed(limiter, "twice", 12, rpm=10) == 9  # the second outage starts from that
    await client.aclose()


async def test_many_keys_debts_are_repaid_a_few_per_check(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, replicas=1)
    keys = [principal(f"many-{n}", rpm=10) for n in range(40)]
    own_redis.stop()
    for p in keys:
        assert (await limiter.evaluate(p)).backend == "fallback"
    own_redis.start()
    await wait_recovered(client)
    other = principal("bystander", rpm=1000)
    checks = 0
    while limiter.debts:
        await limiter.evaluate(other)
        checks += 1
    assert checks == 3  # 40 debts, 16 per check
    remaining = [(await limiter.evaluate(p)).quotas[0].remaining for p in keys]
    assert remaining == [10 - 2] * 40  # the outage's request and this one, both on Redis
    await client.aclose()


async def test_paused_redis_times_out_into_the_fallback(own_redis) -> None:
    client = resilient(own_redis.url, timeout=0.1)
    limiter = Limiter(client, replicas=1)
    p = principal("fallback-pause", rpm=9, concurrency=3)
    assert (await limiter.evaluate(p)).backend == "redis"
    own_redis.cli("CLIENT", "PAUSE", "2000", "ALL")
    results = [await limiter.evaluate(p) for _ in range(12)]
    assert {d.backend for d in results} == {"fallback"}
    assert sum(d.allowed for d in results) == 8  # 9 minus the one Redis counted
    async with slot(limiter, p), slot(limiter, p), slot(limiter, p):
        with pytest.raises(ConcurrencyLimited):
            await limiter.acquire(p)
    await wait_recovered(client)
    assert (await limiter.evaluate(p)).backend == "redis"
    await client.aclose()


async def test_a_lease_whose_release_failed_frees_itself_after_its_ttl(own_redis) -> None:
    client = resilient(own_redis.url, timeout=0.1)
    limiter = Limiter(client, lease_seconds=1.5)
    p = principal("fallback-lease", concurrency=1)
    async with slot(limiter, p):
        own_redis.cli("CLIENT", "PAUSE", "600", "WRITE")  # the release below times out
    await asyncio.sleep(0.7)
    assert own_redis.cli("ZCARD", state_key(p.name, "conc")) == "1"  # still held on Redis...
    await wait_recovered(client)
    with pytest.raises(ConcurrencyLimited):
        await limiter.acquire(p)
    await asyncio.sleep(1.0)  # ...until its TTL, since nothing renews it
    lease = await limiter.acquire(p)
    assert lease is not None and lease.backend is limiter.primary
    await lease.release()
    await client.aclose()


async def test_open_policy_lets_everything_through_and_counts_it(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, fallback="open")
    p = principal("fallback-open", rpm=1, concurrency=1)
    own_redis.stop()
    before = REGISTRY.get_sample_value(
        "gateway_limit_decisions_total", {"kind": "rpm", "decision": "allowed_open", "key": p.name}
    )
    results = [await check(limiter, p) for _ in range(5)]
    assert all(d.allowed and d.backend == "open" for d in results)
    assert (
        REGISTRY.get_sample_value(
            "gateway_limit_decisions_total", {"kind": "rpm", "decision": "allowed_open", "key": p.name}
        )
        == (before or 0) + 5
    )
    async with slot(limiter, p), slot(limiter, p):
        pass
    await client.aclose()


async def test_closed_policy_refuses_with_50301(own_redis) -> None:
    client = resilient(own_redis.url)
    limiter = Limiter(client, fallback="closed")
    p = principal("fallback-closed", rpm=100, concurrency=5)
    own_redis.stop()
    with pytest.raises(ServiceUnavailable) as err:
        await check(limiter, p)
    assert err.value.code == 50301 and err.value.retry_after_seconds == 1
    with pytest.raises(ServiceUnavailable):
        await limiter.acquire(p)
    await client.aclose()
