"""The two backends behave alike; the embedded one is bounded by entries and by bytes."""

from __future__ import annotations

import asyncio

from gateway.cache import CacheBackend, MemoryCacheBackend
from tests.unit.cache.conftest import sample


async def test_set_get_delete(backend: CacheBackend) -> None:
    assert await backend.get("k") is None
    await backend.set("k", b"v1", 60)
    assert await backend.get("k") == b"v1"
    await backend.set("k", b"v2", 60)
    assert await backend.get("k") == b"v2"
    await backend.delete("k")
    assert await backend.get("k") is None


async def test_add_is_set_if_absent(backend: CacheBackend) -> None:
    assert await backend.add("lease", b"me", 60)
    assert not await backend.add("lease", b"you", 60)
    assert await backend.get("lease") == b"me"


async def test_compare_and_delete_and_renew(backend: CacheBackend) -> None:
    await backend.set("lease", b"me", 0.3)
    assert not await backend.delete_if("lease", b"you")
    assert not await backend.expire_if("lease", b"you", 60)
    assert await backend.expire_if("lease", b"me", 60)
    await asyncio.sleep(0.4)
    assert await backend.get("lease") == b"me"  # renewed past its first TTL
    assert await backend.delete_if("lease", b"me")
    assert await backend.get("lease") is None
    assert not await backend.expire_if("lease", b"me", 60)


async def test_entries_expire(backend: CacheBackend) -> None:
    await backend.set("short", b"v", 0.2)
    await backend.set("long", b"v", 60)
    await asyncio.sleep(0.35)
    assert await backend.get("short") is None
    assert await backend.get("long") == b"v"
    assert await backend.add("short", b"again", 60)  # an expired entry no longer blocks add


async def test_lru_evicts_least_recently_used_entries() -> None:
    store = MemoryCacheBackend(max_entries=3, max_bytes=10_000)
    before = sample("gateway_cache_evictions_total")
    for name in "abc":
        await store.set(name, b"v", 60)
    await store.get("a")  # a is now the most recently used
    await store.set("d", b"v", 60)
    assert await store.get("b") is None
    assert [await store.get(n) for n in "acd"] == [b"v", b"v", b"v"]
    assert len(store) == 3
    assert sample("gateway_cache_evictions_total") == before + 1


async def test_byte_bound_evicts_and_refuses_oversized_values() -> None:
    store = MemoryCacheBackend(max_entries=1000, max_bytes=1000)
    for i in range(5):
        await store.set(f"k{i}", b"x" * 298, 60)  # 300 bytes with the key
    assert store.bytes <= 1000
    assert len(store) == 3
    assert await store.get("k0") is None and await store.get("k4") is not None
    await store.set("huge", b"x" * 2000, 60)
    assert await store.get("huge") is None
    assert len(store) == 3  # an oversized value does not flush the cache


async def test_bytes_gauge_follows_the_store() -> None:
    before = sample("gateway_cache_bytes")
    store = MemoryCacheBackend(max_entries=10, max_bytes=10_000)
    await store.set("k", b"x" * 99, 60)
    assert sample("gateway_cache_bytes") == before + 100
    await store.set("k", b"x" * 9, 60)
    assert sample("gateway_cache_bytes") == before + 10
    store.clear()
    assert sample("gateway_cache_bytes") == before


async def test_expired_entries_are_not_counted_as_evictions() -> None:
    now = [0.0]
    store = MemoryCacheBackend(max_entries=1, max_bytes=10_000, clock=lambda: now[0])
    before = sample("gateway_cache_evictions_total")
    await store.set("a", b"v", 1)
    now[0] = 5.0
    await store.set("b", b"v", 1)
    assert sample("gateway_cache_evictions_total") == before
