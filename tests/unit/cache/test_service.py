"""ResponseCache over both backends: hits, coalescing across callers and processes, failures."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache import CacheMode, CoalesceTimeout, KeyMaterial, ResponseCache
from gateway.errors import UpstreamError
from tests.unit.cache.conftest import BackendFactory, Counter, answer, sample

KEY = "0" * 64


def make_cache(new_backend: BackendFactory, **kwargs: object) -> ResponseCache:
    options: dict[str, object] = {"ttl": 60, "coalesce_timeout": 5.0, "lease_seconds": 1.0}
    options.update(kwargs)
    return ResponseCache(new_backend(), **options)  # type: ignore[arg-type]


async def test_miss_then_hit_counts_saved_tokens(new_backend: BackendFactory) -> None:
    cache = make_cache(new_backend)
    compute = Counter(answer(total=73))
    hits, saved = (
        sample("gateway_cache_requests_total", {"result": "hit"}),
        sample("gateway_cache_saved_tokens_total"),
    )
    first = await cache.get_or_compute(KEY, compute)
    second = await cache.get_or_compute(KEY, compute)
    assert (first[1], second[1]) == ("MISS", "HIT")
    assert second[0] == first[0] == compute.result
    assert compute.calls == 1
    assert sample("gateway_cache_requests_total", {"result": "hit"}) == hits + 1
    assert sample("gateway_cache_saved_tokens_total") == saved + 73


async def test_hundred_concurrent_identical_requests_make_one_upstream_call(
    new_backend: BackendFactory,
) -> None:
    cache = make_cache(new_backend)
    compute = Counter(delay=0.05)
    results = await asyncio.gather(*(cache.get_or_compute(KEY, compute) for _ in range(100)))
    assert compute.calls == 1
    assert {r[0] for r in results} == {compute.result}
    statuses = [r[1] for r in results]
    assert statuses.count("MISS") == 1 and statuses.count("COALESCED") == 99


async def test_two_processes_sharing_a_store_make_one_upstream_call(new_backend: BackendFactory) -> None:
    first, second = make_cache(new_backend), make_cache(new_backend)
    compute = Counter(delay=0.2)
    calls = [c.get_or_compute(KEY, compute) for _ in range(50) for c in (first, second)]
    results = await asyncio.gather(*calls)
    assert compute.calls == 1
    assert {r[0] for r in results} == {compute.result}
    assert [r[1] for r in results].count("MISS") == 1


async def test_leader_failure_reaches_followers_and_is_not_cached(new_backend: BackendFactory) -> None:
    cache = make_cache(new_backend)
    calls = 0

    async def failing() -> object:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise UpstreamError("upstream said 500")

    results = await asyncio.wait_for(
        asyncio.gather(*(cache.get_or_compute(KEY, failing) for _ in range(20)), return_exceptions=True),  # type: ignore[arg-type]
        timeout=5,
    )
    assert calls == 1
    assert all(isinstance(r, UpstreamError) for r in results)
    compute = Counter()
    assert await cache.get_or_compute(KEY, compute) == (compute.result, "MISS")


async def test_leader_failure_in_another_process_lets_a_follower_take_over(
    new_backend: BackendFactory,
) -> None:
    first, second = make_cache(new_backend), make_cache(new_backend)
    leading = asyncio.Event()

    async def failing() -> object:
        leading.set()
        await asyncio.sleep(0.1)
        raise UpstreamError()

    leader = asyncio.create_task(first.get_or_compute(KEY, failing))  # type: ignore[arg-type]
    await leading.wait()
    compute = Counter()
    followers = await asyncio.gather(*(second.get_or_compute(KEY, compute) for _ in range(10)))
    with pytest.raises(UpstreamError):
        await leader
    assert compute.calls == 1
    assert sorted(r[1] for r in followers) == ["COALESCED"] * 9 + ["MISS"]


async def test_a_dead_leaders_lease_expires_and_a_follower_takes_over(new_backend: BackendFactory) -> None:
    backend = new_backend()
    cache = ResponseCache(backend, ttl=60, coalesce_timeout=5.0, lease_seconds=0.3)
    # A process that took the lease and died: nobody renews or releases it.
    assert await backend.add(cache.flights.lease_key(KEY), b"\x00dead", 0.3)
    compute = Counter()
    result = await asyncio.wait_for(cache.get_or_compute(KEY, compute), timeout=5)
    assert result == (compute.result, "MISS")


async def test_followers_of_a_stuck_leader_time_out(new_backend: BackendFactory) -> None:
    first, second = (
        make_cache(new_backend, coalesce_timeout=0.3),
        make_cache(new_backend, coalesce_timeout=0.3),
    )
    release, leading = asyncio.Event(), asyncio.Event()

    async def stuck() -> object:
        leading.set()
        await release.wait()
        return answer()

    leader = asyncio.create_task(first.get_or_compute(KEY, stuck))  # type: ignore[arg-type]
    await leading.wait()
    local = first.get_or_compute(KEY, Counter())
    remote = second.get_or_compute(KEY, Counter())
    results = await asyncio.wait_for(asyncio.gather(local, remote, return_exceptions=True), timeout=5)
    assert all(isinstance(r, CoalesceTimeout) for r in results)
    assert CoalesceTimeout.code == 50401
    release.set()
    assert (await leader)[1] == "MISS"
    assert (await second.get_or_compute(KEY, Counter()))[1] == "HIT"


async def test_a_cancelled_leader_hands_over_to_a_follower(new_backend: BackendFactory) -> None:
    cache = make_cache(new_backend)
    leading = asyncio.Event()

    async def slow() -> object:
        leading.set()
        await asyncio.sleep(10)
        return answer()

    leader = asyncio.create_task(cache.get_or_compute(KEY, slow))  # type: ignore[arg-type]
    await leading.wait()
    compute = Counter(delay=0.05)
    follower = asyncio.create_task(cache.get_or_compute(KEY, compute))
    await asyncio.sleep(0.02)
    leader.cancel()
    assert await asyncio.wait_for(follower, timeout=5) == (compute.result, "MISS")
    assert compute.calls == 1


@pytest.mark.parametrize("finish_reason", ["abort", None])
async def test_cut_answers_are_shared_but_not_stored(
    new_backend: BackendFactory, finish_reason: str | None
) -> None:
    cache = make_cache(new_backend)
    compute = Counter(answer(finish_reason=finish_reason), delay=0.05)
    results = await asyncio.gather(*(cache.get_or_compute(KEY, compute) for _ in range(5)))
    assert compute.calls == 1 and len({r[0] for r in results}) == 1
    assert await cache.get(KEY) is None
    assert not await cache.store(KEY, compute.result)


async def test_length_limited_answers_are_complete_and_stored(new_backend: BackendFactory) -> None:
    cache = make_cache(new_backend)
    await cache.get_or_compute(KEY, Counter(answer(finish_reason="length")))
    stored = await cache.get(KEY)
    assert stored is not None and stored.finish_reason == "length"


async def test_bypass_and_refresh_modes(new_backend: BackendFactory) -> None:
    cache = make_cache(new_backend)
    old, new = Counter(answer("old")), Counter(answer("new"))
    await cache.get_or_compute(KEY, old)
    assert await cache.get_or_compute(KEY, new, mode=CacheMode.BYPASS) == (new.result, "BYPASS")
    assert (await cache.get_or_compute(KEY, Counter()))[0] == old.result  # bypass stored nothing
    assert await cache.get_or_compute(KEY, new, mode=CacheMode.REFRESH) == (new.result, "MISS")
    assert await cache.get_or_compute(KEY, Counter()) == (new.result, "HIT")  # refresh stored
    assert new.calls == 2


async def test_tenants_do_not_share_answers_unless_the_scope_is_global(new_backend: BackendFactory) -> None:
    material = KeyMaterial(
        image_hashes=["h"], messages="what is this?", model="m", sampling={"temperature": 0}
    )
    scoped = make_cache(new_backend)
    await scoped.get_or_compute(scoped.key(material, owner="tenant-a"), Counter(answer("for A")))
    other = Counter(answer("for B"))
    assert await scoped.get_or_compute(scoped.key(material, owner="tenant-b"), other) == (
        other.result,
        "MISS",
    )

    shared = make_cache(new_backend, scope="global")
    first = Counter(answer("shared"))
    await shared.get_or_compute(shared.key(material, owner="tenant-a"), first)
    assert await shared.get_or_compute(shared.key(material, owner="tenant-b"), Counter()) == (
        first.result,
        "HIT",
    )


async def test_answers_expire_after_their_ttl(new_backend: BackendFactory) -> None:
    cache = make_cache(new_backend, ttl=0.2)
    await cache.get_or_compute(KEY, Counter())
    assert (await cache.get_or_compute(KEY, Counter()))[1] == "HIT"
    await asyncio.sleep(0.35)
    assert (await cache.get_or_compute(KEY, Counter()))[1] == "MISS"


async def test_a_streaming_leader_publishes_to_followers(new_backend: BackendFactory) -> None:
    first, second = make_cache(new_backend), make_cache(new_backend)
    streamed = answer("streamed in chunks")
    async with first.flight(KEY) as leader:
        assert leader.status == "MISS" and leader.answer is None
        follower = asyncio.create_task(second.get_or_compute(KEY, Counter()))
        local = asyncio.create_task(first.get_or_compute(KEY, Counter()))
        await asyncio.sleep(0.05)  # chunks go out to the leader's client meanwhile
        assert not follower.done() and not local.done()
        await leader.publish(streamed)
    assert await follower == (streamed, "COALESCED")
    assert await local == (streamed, "COALESCED")
    async with first.flight(KEY) as replay:
        assert (replay.status, replay.answer) == ("HIT", streamed)


async def test_an_aborted_stream_stores_nothing_and_lets_a_follower_lead(new_backend: BackendFactory) -> None:
    cache = make_cache(new_backend)
    compute = Counter()
    async with cache.flight(KEY) as leader:
        follower = asyncio.create_task(cache.get_or_compute(KEY, compute))
        await asyncio.sleep(0.02)
        assert leader.status == "MISS"  # the stream breaks off: no publish
    assert await asyncio.wait_for(follower, timeout=5) == (compute.result, "MISS")


async def test_an_unreadable_entry_is_dropped(new_backend: BackendFactory) -> None:
    cache = make_cache(new_backend)
    await cache.backend.set(cache.flights.value_key(KEY), b"\xc1 not msgpack", 60)
    compute = Counter()
    assert await cache.get_or_compute(KEY, compute) == (compute.result, "BYPASS")
    assert await cache.get_or_compute(KEY, compute) == (compute.result, "MISS")
