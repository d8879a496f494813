"""Creating, listing, revoking and authenticating API keys.

Lookups are cached per process for ``key_cache_seconds`` (found and not-found alike), so a
revocation reaches every replica within that window. When the store is unavailable, the
last-known answer for a key is used however old it is (a key that worked a minute ago keeps
working through a Redis outage); a key never seen by this process gets 50301 with a short
``retry_after`` rather than a 401, because calling a possibly valid key "invalid" is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway import metrics
from gateway.auth import keys
from gateway.auth.principal import KeyRecord, Limits, Principal
from gateway.auth.store import KeyStore
from gateway.errors import ServiceUnavailable, Unauthorized
from gateway.store.redis import StoreUnavailable

CACHE_MAX_ENTRIES = 10_000
TOUCH_INTERVAL_SECONDS = 60.0
UNKNOWN_KEY_RETRY_AFTER = 1.0


@dataclass(slots=True)
class _Entry:
    record: KeyRecord | None  # None: no such key
    fetched_at: float  # monotonic


class KeyManager:
    """API keys over a :class:`KeyStore`, with a per-process lookup cache."""

    def __init__(
        self,
        store: KeyStore,
        *,
        cache_seconds: float = 2.0,
        auth_disabled: bool = False,
        touch_interval: float = TOUCH_INTERVAL_SECONDS,
        cache_max_entries: int = CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.auth_disabled = auth_disabled
        self.touch_interval = touch_interval
        self.cache_max_entries = cache_max_entries
        self._clock = clock
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._touched: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- operator side (CLI) -----------------------------------------------------------------

    async def create(
        self,
        name: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
        presets: list[str] | tuple[str, ...] | None = None,
        routes: list[str] | tuple[str, ...] | None = None,
    ) -> tuple[str, KeyRecord]:
        """Create a key; returns ``(plaintext, record)``. The plaintext is not stored: show it once."""
        name = name.strip()
        if not name or len(name) > 64 or not name.isprintable():
            raise ValueError("a key name is 1-64 printable characters")
        for label, value in (("rpm", rpm), ("tpm", tpm), ("concurrency", concurrency)):
            if value is not None and value < 1:
                raise ValueError(f"{label} must be at least 1")
        plaintext = keys.generate_key()
        record = KeyRecord(
            name=name,
            key_id=keys.key_id(plaintext),
            key_hash=keys.hash_key(plaintext),
            limits=Limits(rpm=rpm, tpm=tpm, concurrency=concurrency),
            presets=None if presets is None else tuple(presets),
            routes=None if routes is None else tuple(routes),
            created_at=time.time(),
        )
        await self.store.add(record)
        return plaintext, record

    async def list(self) -> list[KeyRecord]:
        """Every key record (revoked ones included); records hold no secret."""
        return await self.store.list()

    async def revoke(self, name: str) -> bool:
        """Revoke the active key called ``name``; False when there is none."""
        done = await self.store.revoke(name, time.time())
        if done:
            # This process forgets at once; other processes within ``cache_seconds``.
            for key_hash, entry in list(self._cache.items()):
                if entry.record is not None and entry.record.name == name:
                    del self._cache[key_hash]
        return done

    # --- request side --------------------------------------------------------------------------

    async def authenticate(self, presented: str | None) -> Principal:
        """The principal for a presented key; Unauthorized (40101) or ServiceUnavailable (50301)."""
        if self.auth_disabled:
            return Principal.anonymous()
        if not presented:
            raise self._refuse("missing", "missing API key")
        if not keys.is_well_formed(presented):
            raise self._refuse("malformed", "invalid API key")
        key_hash = keys.hash_key(presented)
        record = await self._lookup(key_hash)
        if record is None or not keys.hashes_match(record.key_hash, key_hash):
            raise self._refuse("unknown", "invalid API key")
        if record.revoked:
            raise self._refuse("revoked", "this API key was revoked")
        self._maybe_touch(key_hash)
        return record.principal()

    async def _lookup(self, key_hash: str) -> KeyRecord | None:
        now = self._clock()
        entry = self._cache.get(key_hash)
        if entry is not None and now - entry.fetched_at < self.cache_seconds:
            self._cache.move_to_end(key_hash)
            return entry.record
        try:
            record = await self.store.get(key_hash)
        except StoreUnavailable:
            if entry is not None:  # last-known-good, however old
                return entry.record
            metrics.AUTH_FAILURES.labels(reason="store_unavailable").inc()
            raise ServiceUnavailable(
                "key store unavailable; retry shortly", retry_after=UNKNOWN_KEY_RETRY_AFTER
            ) from None
        self._cache[key_hash] = _Entry(record, now)
        self._cache.move_to_end(key_hash)
        while len(self._cache) > self.cache_max_entries:
            self._cache.popitem(last=False)
        return record

    def _refuse(self, reason: str, message: str) -> Unauthorized:
        metrics.AUTH_FAILURES.labels(reason=reason).inc()
        return Unauthorized(message)

    def _maybe_touch(self, key_hash: str) -> None:
        """Update ``last_used_at`` at most once per ``touch_interval`` per process, off the request path."""
        now = self._clock()
        if now - self._touched.get(key_hash, -self.touch_interval) < self.touch_interval:
            return
        self._touched[key_hash] = now
        if len(self._touched) > self.cache_max_entries:
            self._touched.clear()
        task = asyncio.get_running_loop().create_task(self._touch(key_hash))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _touch(self, key_hash: str) -> None:
        with contextlib.suppress(StoreUnavailable):  # a missed last_used_at update is not worth an error
            await self.store.touch(key_hash, time.time())

    async def aclose(self) -> None:
        """Wait for pending ``last_used_at`` updates."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
