"""Where cache entries live: Redis (shared by every gateway process) or in-process (embedded).

Both speak :class:`CacheBackend`: plain bytes under string keys with a TTL, plus the three
compare-and-set operations the cross-process single flight needs for its lease. The Redis
backend raises :class:`~gateway.store.redis.StoreUnavailable` on any failure (through
``ResilientRedis.run``); the embedded backend never fails.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, cast

import redis.asyncio as aioredis

from gateway import metrics
from gateway.settings import Settings
from gateway.store.redis import ResilientRedis


class CacheBackend(Protocol):
    """Bytes under keys with a TTL (seconds), and compare-and-set for leases."""

    shared: bool  # True when other gateway processes see the same entries

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Set only if absent (SET NX); True when this call set it."""
        ...

    async def delete(self, key: str) -> None: ...

    async def delete_if(self, key: str, value: bytes) -> bool:
        """Delete only while the key still holds ``value`` (release a lease we own)."""
        ...

    async def expire_if(self, key: str, value: bytes, ttl: float) -> bool:
        """Reset the TTL only while the key still holds ``value`` (renew a lease we own)."""
        ...


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


class MemoryCacheBackend:
    """In-process LRU with per-entry TTL, bounded by entry count and by bytes (key + value)."""

    shared = False

    def __init__(
        self, *, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    def _live(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._remove(key)
            return None
        self._data.move_to_end(key)
        return entry[1]

    def _remove(self, key: str) -> None:
        _, value = self._data.pop(key)
        size = len(key) + len(value)
        self.bytes -= size
        metrics.CACHE_BYTES.dec(size)

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if key in self._data:
            self._remove(key)
        size = len(key) + len(value)
        if size > self.max_bytes:
            return  # would evict everything else and still not fit
        self._data[key] = (self._clock() + ttl, value)
        self.bytes += size
        metrics.CACHE_BYTES.inc(size)
        now = self._clock()
        while len(self._data) > self.max_entries or self.bytes > self.max_bytes:
            oldest, (expires, _) = next(iter(self._data.items()))
            self._remove(oldest)
            if expires > now:  # dropping an expired entry is not an eviction
                metrics.CACHE_EVICTIONS.inc()

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        if key in self._data:
            self._remove(key)

    async def delete_if(self, key: str, value: bytes) -> bool:
        if self._live(key) != value:
            return False
        self._remove(key)
        return True

    async def expire_if(self, key: str, value: bytes, ttl: float) -> bool:
        if self._live(key) != value:
            return False
        self._data[key] = (self._clock() + ttl, value)
        return True

    def clear(self) -> None:
        for key in list(self._data):
            self._remove(key)


_DELETE_IF = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_EXPIRE_IF = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


class RedisCacheBackend:
    """Entries in Redis (SET PX), every call through ``ResilientRedis.run``."""

    shared = True

    def __init__(self, redis: ResilientRedis) -> None:
        self.redis = redis

    async def get(self, key: str) -> bytes | None:
        async def call(r: aioredis.Redis) -> bytes | None:
            return cast("bytes | None", await r.get(key))

        return await self.redis.run("cache_get", call)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        async def call(r: aioredis.Redis) -> Any:
            return await r.set(key, value, px=_ms(ttl))

        await self.redis.run("cache_set", call)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        async def call(r: aioredis.Redis) -> bool:
            return bool(await r.set(key, value, px=_ms(ttl), nx=True))

        return await self.redis.run("cache_lease", call)

    async def delete(self, key: str) -> None:
        async def call(r: aioredis.Redis) -> Any:
            return await r.delete(key)

        await self.redis.run("cache_delete", call)

    async def delete_if(self, key: str, value: bytes) -> bool:
        async def call(r: aioredis.Redis) -> bool:
            return bool(await cast("Any", r.eval(_DELETE_IF, 1, key, value)))

        return await self.redis.run("cache_release", call)

    async def expire_if(self, key: str, value: bytes, ttl: float) -> bool:
        async def call(r: aioredis.Redis) -> bool:
            return bool(await cast("Any", r.eval(_EXPIRE_IF, 1, key, value, _ms(ttl))))

        return await self.redis.run("cache_renew", call)


def backend_from_settings(settings: Settings, redis: ResilientRedis | None) -> CacheBackend:
    """Redis when the gateway has it, else an embedded LRU bounded by the cache settings."""
    if redis is not None:
        return RedisCacheBackend(redis)
    return MemoryCacheBackend(max_entries=settings.cache_max_entries, max_bytes=settings.cache_max_bytes)
