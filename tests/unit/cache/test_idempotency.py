"""Idempotency-Key: retries get the first answer; another body under the same key is refused."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache import CachedAnswer, IdempotencyStore
from gateway.errors import IdempotencyConflict, UpstreamError
from tests.unit.cache.conftest import BackendFactory, Counter, answer


def make_store(new_backend: BackendFactory, *, ttl: float = 60.0) -> IdempotencyStore:
    return IdempotencyStore(new_backend(), ttl=ttl, wait_timeout=5.0, lease_seconds=1.0)


class Sampler:
    """A temperature > 0 upstream: every call answers differently."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay

    async def __call__(self) -> CachedAnswer:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return answer(f"creative answer #{self.calls}")


async def test_a_retry_with_the_same_body_replays_the_first_answer(new_backend: BackendFactory) -> None:
    store = make_store(new_backend)
    compute = Sampler()
    first = await store.run(owner="app", idempotency_key="order-1", body_hash="b1", compute=compute)
    again = await store.run(owner="app", idempotency_key="order-1", body_hash="b1", compute=compute)
    assert first[0].text == "creative answer #1" and first[1] is False
    assert again == (first[0], True)
    assert compute.calls == 1
    other_key = await store.run(owner="app", idempotency_key="order-2", body_hash="b1", compute=compute)
    assert other_key[0].text == "creative answer #2"


async def test_the_same_key_with_another_body_is_a_conflict(new_backend: BackendFactory) -> None:
    store = make_store(new_backend)
    await store.run(owner="app", idempotency_key="order-1", body_hash="b1", compute=Sampler())
    with pytest.raises(IdempotencyConflict) as info:
        await store.run(owner="app", idempotency_key="order-1", body_hash="b2", compute=Sampler())
    assert (info.value.code, info.value.status) == (42201, 422)
    assert "order-1" in info.value.message and "different request body" in info.value.message


async def test_keys_are_scoped_to_their_owner(new_backend: BackendFactory) -> None:
    store = make_store(new_backend)
    await store.run(owner="app-a", idempotency_key="k", body_hash="b1", compute=Sampler())
    compute = Sampler()
    result = await store.run(owner="app-b", idempotency_key="k", body_hash="b2", compute=compute)
    assert result[1] is False and compute.calls == 1


async def test_a_retry_while_the_first_is_in_flight_waits_for_it(new_backend: BackendFactory) -> None:
    first_process, second_process = make_store(new_backend), make_store(new_backend)
    compute = Sampler(delay=0.2)
    original = asyncio.create_task(
        first_process.run(owner="app", idempotency_key="k", body_hash="b", compute=compute)
    )
    await asyncio.sleep(0.05)
    retries = [
        store.run(owner="app", idempotency_key="k", body_hash="b", compute=compute)
        for store in (first_process, second_process)
    ]
    results = await asyncio.gather(original, *retries)
    assert compute.calls == 1
    assert [r[1] for r in results] == [False, True, True]
    assert len({r[0] for r in results}) == 1


async def test_a_different_body_while_the_first_is_in_flight_is_refused_at_once(
    new_backend: BackendFactory,
) -> None:
    first_process, second_process = make_store(new_backend), make_store(new_backend)
    release = asyncio.Event()

    async def held() -> CachedAnswer:
        await release.wait()
        return answer()

    original = asyncio.create_task(
        first_process.run(owner="app", idempotency_key="k", body_hash="b1", compute=held)
    )
    await asyncio.sleep(0.05)
    for store in (first_process, second_process):
        with pytest.raises(IdempotencyConflict):
            await asyncio.wait_for(
                store.run(owner="app", idempotency_key="k", body_hash="b2", compute=Sampler()), timeout=2
            )
    release.set()
    assert (await original)[1] is False


async def test_a_failed_first_attempt_is_not_recorded(new_backend: BackendFactory) -> None:
    store = make_store(new_backend)

    async def failing() -> CachedAnswer:
        raise UpstreamError()

    with pytest.raises(UpstreamError):
        await store.run(owner="app", idempotency_key="k", body_hash="b", compute=failing)
    compute = Sampler()
    assert (await store.run(owner="app", idempotency_key="k", body_hash="b", compute=compute))[1] is False
    assert compute.calls == 1


async def test_records_expire(new_backend: BackendFactory) -> None:
    store = make_store(new_backend, ttl=0.2)
    compute = Sampler()
    await store.run(owner="app", idempotency_key="k", body_hash="b", compute=compute)
    await asyncio.sleep(0.35)
    assert (await store.run(owner="app", idempotency_key="k", body_hash="other", compute=compute))[1] is False


async def test_idempotency_records_are_apart_from_the_content_cache(new_backend: BackendFactory) -> None:
    from gateway.cache import ResponseCache

    backend = new_backend()
    store = IdempotencyStore(backend, ttl=60, wait_timeout=5)
    cache = ResponseCache(backend, ttl=60, coalesce_timeout=5)
    key = IdempotencyStore.record_key("app", "k")
    await store.run(owner="app", idempotency_key="k", body_hash="b", compute=Counter())
    assert await cache.get(key) is None
