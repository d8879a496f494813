"""Every part of the gateway that keeps state in Redis, exercised on one Redis URL.

Run against a Redis Cluster (tests/integration/test_redis_cluster.py) and a Sentinel group
(test_redis_sentinel.py). Each check opens two clients, as two gateway processes would, so what
one writes the other must see; on a cluster the keys of many key names land on every node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from gateway.auth import KeyManager, KeyNameTaken, Limits, Principal
from gateway.auth.redis_store import RedisKeyStore
from gateway.cache import IdempotencyStore, RedisCacheBackend
from gateway.cache.flight import SingleFlight
from gateway.devex.redis_store import RedisDevexStore
from gateway.errors import ConcurrencyLimited, IdempotencyConflict, RequestRateLimited
from gateway.limits import Limiter
from gateway.store.redis import ResilientRedis
from tests.unit.cache.conftest import answer
from tests.unit.devex.test_store import entry, record

NAMES = [f"app-{n}" for n in range(12)] + ["brace}{name", "100%"]  # braces: hash tags stay whole


@asynccontextmanager
async def two_clients(url: str) -> AsyncIterator[tuple[ResilientRedis, ResilientRedis]]:
    a, b = (ResilientRedis(url, timeout=2.0, breaker_failures=3, breaker_reset_seconds=0.5) for _ in "ab")
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


def principal(name: str, **limits: int) -> Principal:
    return Principal(name=name, key_id="vlgw_abcdef", limits=Limits(**limits))


async def check_limiter(url: str) -> None:
    """rpm, tpm and concurrency are global across two processes, for every key name."""
    async with two_clients(url) as (a, b):
        first, second = Limiter(a), Limiter(b)
        for name in NAMES:
            p = principal(name, rpm=4, tpm=1000, concurrency=1)
            decisions = [await (first if i % 2 else second).evaluate(p, 100) for i in range(6)]
            assert [d.allowed for d in decisions] == [True] * 4 + [False] * 2, name
            assert {d.backend for d in decisions} == {"redis"}
            refusal = (await first.evaluate(p)).error()
            assert isinstance(refusal, RequestRateLimited)
            held = await first.acquire(p)
            try:
                with pytest.raises(ConcurrencyLimited):
                    await second.acquire(p)
            finally:
                assert held is not None
                await held.release()
            lease = await second.acquire(p)
            assert lease is not None
            await lease.release()
        tokens = principal("tokens", tpm=1000)
        assert (await first.evaluate(tokens, 900)).allowed
        assert not (await second.evaluate(tokens, 200)).allowed
        await first.reconcile(tokens, 900, 100)  # the answer was smaller: 800 back
        assert (await second.evaluate(tokens, 200)).allowed


async def check_cache_and_leases(url: str) -> None:
    """Values, leases (SET NX, compare-and-delete, compare-and-expire) and single flight across processes."""
    async with two_clients(url) as (a, b):
        ba, bb = RedisCacheBackend(a), RedisCacheBackend(b)
        for name in NAMES:
            await ba.set(f"vlgw:test:{name}", name.encode(), 30)
            assert await bb.get(f"vlgw:test:{name}") == name.encode()
            assert await ba.add(f"vlgw:test:{name}:lease", b"mine", 30)
            assert not await bb.add(f"vlgw:test:{name}:lease", b"theirs", 30)
            assert not await bb.delete_if(f"vlgw:test:{name}:lease", b"theirs")
            assert await ba.expire_if(f"vlgw:test:{name}:lease", b"mine", 30)
            assert await ba.delete_if(f"vlgw:test:{name}:lease", b"mine")
        fa = SingleFlight(ba, prefix="vlgw:cache", wait_timeout=5, lease_seconds=1)
        fb = SingleFlight(bb, prefix="vlgw:cache", wait_timeout=5, lease_seconds=1)
        for name in NAMES:
            leader = await fa.join(name)
            assert leader.status == "LEAD"
            follower = asyncio.create_task(fb.join(name))
            await asyncio.sleep(0.05)
            assert not follower.done()  # it waits on the leader's lease
            assert await leader.publish(name.encode(), ttl=30)
            got = await asyncio.wait_for(follower, 5)
            assert (got.status, got.value) == ("COALESCED", name.encode())
            hit = await fb.join(name)
            assert (hit.status, hit.value) == ("HIT", name.encode())


async def check_idempotency(url: str) -> None:
    """An Idempotency-Key's first answer is replayed by another process; another body conflicts."""
    async with two_clients(url) as (a, b):
        sa = IdempotencyStore(RedisCacheBackend(a), ttl=60, wait_timeout=5, lease_seconds=1)
        sb = IdempotencyStore(RedisCacheBackend(b), ttl=60, wait_timeout=5, lease_seconds=1)
        for name in NAMES:
            calls: list[str] = []

            async def compute(who: str = name) -> object:
                calls.append(who)
                return answer(f"answer for {who}")

            first, replayed = await sa.run(owner=name, idempotency_key="k1", body_hash="b", compute=compute)
            again, replayed_again = await sb.run(
                owner=name, idempotency_key="k1", body_hash="b", compute=compute
            )
            assert (replayed, replayed_again) == (False, True) and again == first and len(calls) == 1
            with pytest.raises(IdempotencyConflict):
                await sb.run(owner=name, idempotency_key="k1", body_hash="other", compute=compute)


async def check_key_store(url: str) -> None:
    """Create (a three-key script), look up, list and revoke API keys from two processes."""
    async with two_clients(url) as (a, b):
        ma, mb = KeyManager(RedisKeyStore(a)), KeyManager(RedisKeyStore(b))
        try:
            created = {}
            for name in NAMES:
                plaintext, _ = await ma.create(name, rpm=60)
                created[name] = plaintext
                with pytest.raises(KeyNameTaken):
                    await mb.create(name)
            for name, plaintext in created.items():
                found = await mb.authenticate(plaintext)
                assert found.name == name and found.limits.rpm == 60
            assert {r.name for r in await mb.list()} >= set(NAMES)
            assert await mb.revoke(NAMES[0])
            assert not await mb.revoke(NAMES[0])
            await ma.create(NAMES[0])  # the name is free again
        finally:
            await ma.aclose()
            await mb.aclose()


async def check_devex(url: str) -> None:
    """Request records, the feedback stream and daily usage, written by one process, read by another."""
    async with two_clients(url) as (a, b):
        da, db = RedisDevexStore(a), RedisDevexStore(b)
        await da.put_requests([record(f"r-{name}", key_name=name) for name in NAMES], ttl=60)
        for name in NAMES:
            got = await db.get_request(name, f"r-{name}")
            assert got is not None and got.key_name == name
        now = time.time()
        ids = [await da.add_feedback(entry(now, f"r{n}")) for n in range(3)]
        assert [e.id async for e in db.feedback_between(now - 60, now + 60)] == ids
        await da.add_usage({(name, "2026-11-29"): {"requests": 2} for name in NAMES})
        await da.add_usage({(name, "2026-11-29"): {"requests": 1, "err:42901": 1} for name in NAMES})
        for name in NAMES:
            usage = await db.get_usage(name, ["2026-11-28", "2026-11-29"])
            assert usage == {"2026-11-29": {"requests": 3, "err:42901": 1}}


CHECKS: list[Callable[[str], object]] = [
    check_limiter, check_cache_and_leases, check_idempotency, check_key_store, check_devex,
]  # fmt: skip
