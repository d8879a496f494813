"""Creating, rotating, revoking and authenticating API keys.

A presented key is checked in this order, each step cheaper than the next:

1. shape and tag: a signed key's HMAC tag (or a legacy key's CRC32) must check, else 40101 with
   no store lookup and no cache entry (:mod:`gateway.auth.keys`);
2. the **valid-key cache**: records of keys that were valid when fetched, LRU-bounded; only a
   store answer for a usable key enters it, so invalid keys can never evict a valid one;
3. the **negative cache**: unknown, revoked and expired keys, bounded separately;
4. for legacy-shaped keys in neither cache, the per-address miss budget
   (:mod:`gateway.auth.throttle`);
5. one store lookup.

Entries are fresh for ``cache_seconds``, so a revocation reaches every replica within that
window. When the store is unavailable, the last-known answer is used however old (a key that
worked a minute ago keeps working through a Redis outage); a key never seen by this process
gets 50301 with a short ``retry_after`` rather than a 401.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway import metrics
from gateway.auth import keys
from gateway.auth.keys import KeyShape, Signer
from gateway.auth.last_used import TOUCH_FLUSH_SECONDS, TOUCH_INTERVAL_SECONDS, LastUsed
from gateway.auth.principal import KeyRecord, Limits, Principal
from gateway.auth.store import KeyStore
from gateway.auth.throttle import MissBudget
from gateway.errors import ServiceUnavailable, Unauthorized, UnknownKeysLimited
from gateway.store.redis import StoreUnavailable

CACHE_MAX_ENTRIES = 10_000
NEGATIVE_MAX_ENTRIES = 10_000
UNKNOWN_KEY_RETRY_AFTER = 1.0


@dataclass(slots=True)
class _Entry:
    record: KeyRecord | None  # None: no such key
    fetched_at: float  # monotonic


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class KeyManager:
    """API keys over a :class:`KeyStore`, with separate valid and negative lookup caches."""

    def __init__(
        self,
        store: KeyStore,
        *,
        cache_seconds: float = 2.0,
        auth_disabled: bool = False,
        secret: str | None = None,
        accept_legacy: bool = True,
        touch_interval: float = TOUCH_INTERVAL_SECONDS,
        touch_flush: float = TOUCH_FLUSH_SECONDS,
        cache_max_entries: int = CACHE_MAX_ENTRIES,
        negative_max_entries: int = NEGATIVE_MAX_ENTRIES,
        misses: MissBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.auth_disabled = auth_disabled
        self.accept_legacy = accept_legacy
        self.cache_max_entries = cache_max_entries
        self.negative_max_entries = negative_max_entries
        self.misses = misses if misses is not None else MissBudget(clock=clock)
        self._clock = clock
        self._wall = wall
        self._signer = Signer(secret.encode()) if secret else None
        self._valid: OrderedDict[str, _Entry] = OrderedDict()
        self._negative: OrderedDict[str, _Entry] = OrderedDict()
        self.last_used = LastUsed(
            store, interval=touch_interval, flush_after=touch_flush, max_keys=cache_max_entries, clock=clock,
            wall=wall,
        )  # fmt: skip
        self._inflight: dict[str, asyncio.Task[KeyRecord | None]] = {}
        self._signer_lock = asyncio.Lock()

    async def signer(self) -> Signer:
        """The signer: from ``GATEWAY_KEY_SECRET``, else the secret kept in the store (made once)."""
        if self._signer is None:
            async with self._signer_lock:  # the first burst of requests asks the store once
                if self._signer is None:
                    self._signer = Signer((await self.store.secret(keys.new_secret())).encode())
        return self._signer

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
        models: list[str] | tuple[str, ...] | None = None,
        expires_at: float | None = None,
    ) -> tuple[str, KeyRecord]:
        """Create a key; returns ``(plaintext, record)``. The plaintext is not stored: show it once."""
        name = name.strip()
        if not name or len(name) > 64 or not name.isprintable():
            raise ValueError("a key name is 1-64 printable characters")
        for label, value in (("rpm", rpm), ("tpm", tpm), ("concurrency", concurrency)):
            if value is not None and value < 1:
                raise ValueError(f"{label} must be at least 1")
        now = self._wall()
        if expires_at is not None and expires_at <= now:
            raise ValueError(f"the expiry {iso(expires_at)} is in the past")
        plaintext = (await self.signer()).generate()
        record = KeyRecord(
            name=name,
            key_id=keys.key_id(plaintext),
            key_hash=keys.hash_key(plaintext),
            limits=Limits(rpm=rpm, tpm=tpm, concurrency=concurrency),
            presets=None if presets is None else tuple(presets),
            routes=None if routes is None else tuple(routes),
            models=None if models is None else tuple(models),
            created_at=now,
            expires_at=expires_at,
        )
        await self.store.add(record)
        return plaintext, record

    async def list(self) -> list[KeyRecord]:
        """Every key record (revoked and rotated-out ones included); records hold no secret."""
        return await self.store.list()

    async def current(self, name: str) -> KeyRecord | None:
        """The key that holds ``name`` now (not revoked, not rotated out), or None."""
        return next((r for r in await self.store.list() if r.name == name and r.current), None)

    async def rotate(
        self, name: str, *, grace_seconds: float, expires_at: float | None = None
    ) -> tuple[str, KeyRecord, KeyRecord]:
        """A new secret for ``name`` with the same limits and allow-lists; ``(plaintext, new, old)``.

        The old key stays valid ``grace_seconds`` more (never past its own expiry), then is
        refused; both count against the same limits, which are per name. LookupError when no
        current key has that name.
        """
        if grace_seconds < 0:
            raise ValueError("the grace period cannot be negative")
        old = await self.current(name)
        if old is None:
            raise LookupError(f"no active key called {name!r}")
        now = self._wall()
        if expires_at is not None and expires_at <= now:
            raise ValueError(f"the expiry {iso(expires_at)} is in the past")
        plaintext = (await self.signer()).generate()
        new = KeyRecord(
            name=old.name, key_id=keys.key_id(plaintext), key_hash=keys.hash_key(plaintext),
            limits=old.limits, presets=old.presets, routes=old.routes, models=old.models,
            created_at=now, expires_at=expires_at,
        )  # fmt: skip
        grace_until = now + grace_seconds
        if old.expires_at is not None:
            grace_until = min(grace_until, old.expires_at)
        if not await self.store.rotate(old, new, grace_until):
            raise LookupError(f"the key {name!r} was revoked or rotated meanwhile; try again")
        self._forget(name)
        return plaintext, new, old

    async def revoke(self, name: str) -> bool:
        """Revoke the current key called ``name`` (and its predecessors in grace); False when none."""
        done = await self.store.revoke(name, self._wall())
        if done:
            self._forget(name)  # this process at once; other processes within ``cache_seconds``
        return done

    def _forget(self, name: str) -> None:
        for key_hash, entry in list(self._valid.items()):
            if entry.record is not None and entry.record.name == name:
                del self._valid[key_hash]

    # --- request side --------------------------------------------------------------------------

    async def authenticate(self, presented: str | None, *, client: str | None = None) -> Principal:
        """The principal for a presented key; 40101, 42904 or 50301 otherwise.

        ``client`` is the caller's address (``request.client.host``): legacy-shaped keys the
        store does not know are budgeted per address. Without it, all such callers share one
        budget (signed keys are never budgeted).
        """
        if self.auth_disabled:
            return Principal.anonymous()
        if not presented:
            raise self._refuse("missing", "missing API key")
        shape = keys.shape(presented)
        if shape is KeyShape.MALFORMED:
            raise self._refuse("malformed", "invalid API key")
        key_hash = keys.hash_key(presented)
        record = self._fresh_valid(key_hash)
        if record is None:  # not a key known valid a moment ago: check the tag, then ask
            if shape is KeyShape.SIGNED:
                if not (await self._signer_or_unavailable()).verify(presented):
                    raise self._refuse("bad_tag", "invalid API key")
            elif not self.accept_legacy:
                raise self._refuse("legacy", "this API key has the old format, no longer accepted: rotate it")
            # Only legacy-shaped keys can be made up by the million; a signed key that checks was
            # minted here, so its lookups are bounded by the keys that exist and need no budget.
            legacy = shape is KeyShape.LEGACY
            record = await self._lookup(key_hash, client if legacy else None, budget=legacy)
        if record is None or not keys.hashes_match(record.key_hash, key_hash):
            raise self._refuse("unknown", "invalid API key")
        if record.revoked:
            raise self._refuse("revoked", "this API key was revoked")
        if record.expired(self._wall()):
            assert record.expires_at is not None  # expired() says so
            if record.rotated_at is not None:
                raise self._refuse(
                    "rotated",
                    f"this API key was replaced by a rotation; its grace ended {iso(record.expires_at)}",
                )
            raise self._refuse("expired", f"this API key expired at {iso(record.expires_at)}")
        self.last_used.note(key_hash)
        return record.principal()

    def _fresh_valid(self, key_hash: str) -> KeyRecord | None:
        """The record when this hash is in the valid-key cache and fresh.

        A presented key whose SHA-256 is a valid key's hash is that key, so its tag needs no
        check: the HMAC is spent only on keys not known to be valid.
        """
        entry = self._valid.get(key_hash)
        if entry is None or self._clock() - entry.fetched_at >= self.cache_seconds:
            return None
        self._valid.move_to_end(key_hash)
        return entry.record

    async def _signer_or_unavailable(self) -> Signer:
        try:
            return await self.signer()
        except StoreUnavailable:
            metrics.AUTH_FAILURES.labels(reason="store_unavailable").inc()
            raise ServiceUnavailable(
                "key store unavailable; retry shortly", retry_after=UNKNOWN_KEY_RETRY_AFTER
            ) from None

    async def _lookup(self, key_hash: str, client: str | None, *, budget: bool) -> KeyRecord | None:
        now = self._clock()
        good = self._valid.get(key_hash)
        if good is not None and now - good.fetched_at < self.cache_seconds:
            return good.record  # filled while this request waited (e.g. for the signing secret)
        bad = self._negative.get(key_hash)
        if bad is not None and now - bad.fetched_at < self.cache_seconds:
            return bad.record
        if budget and good is None and (bad is None or bad.record is None):
            wait = self.misses.retry_after(client)
            if wait is not None:
                if bad is not None:  # known unknown: keep saying so rather than ask again
                    return None
                metrics.AUTH_FAILURES.labels(reason="unknown_limited").inc()
                raise UnknownKeysLimited(retry_after=wait)
        try:
            record = await self._fetch(key_hash)
        except StoreUnavailable:
            known = good if good is not None else bad
            if known is not None:  # last-known answer, however old
                return known.record
            metrics.AUTH_FAILURES.labels(reason="store_unavailable").inc()
            raise ServiceUnavailable(
                "key store unavailable; retry shortly", retry_after=UNKNOWN_KEY_RETRY_AFTER
            ) from None
        if record is not None and not record.revoked and not record.expired(self._wall()):
            self._negative.pop(key_hash, None)
            _put(self._valid, key_hash, _Entry(record, now), self.cache_max_entries)
        else:
            self._valid.pop(key_hash, None)
            if budget and record is None:
                self.misses.charge(client)
            _put(self._negative, key_hash, _Entry(record, now), self.negative_max_entries)
        return record

    async def _fetch(self, key_hash: str) -> KeyRecord | None:
        """One store lookup per key at a time: concurrent requests with the same key share it."""
        task = self._inflight.get(key_hash)
        if task is None:
            task = asyncio.get_running_loop().create_task(self.store.get(key_hash))
            task.add_done_callback(_retrieve)
            self._inflight[key_hash] = task
            task.add_done_callback(lambda _: self._inflight.pop(key_hash, None))
        return await asyncio.shield(task)  # one caller giving up does not cancel the others' lookup

    def _refuse(self, reason: str, message: str) -> Unauthorized:
        metrics.AUTH_FAILURES.labels(reason=reason).inc()
        return Unauthorized(message)

    async def flush(self) -> None:
        """Write the queued ``last_used_at`` times now."""
        await self.last_used.flush()

    async def aclose(self) -> None:
        """Write pending ``last_used_at`` updates now."""
        await self.last_used.aclose()


def _put(cache: OrderedDict[str, _Entry], key_hash: str, entry: _Entry, limit: int) -> None:
    cache[key_hash] = entry
    cache.move_to_end(key_hash)
    while len(cache) > limit:
        cache.popitem(last=False)


def _retrieve(task: asyncio.Task[KeyRecord | None]) -> None:
    """Mark a lookup's exception as seen (its waiters may all have gone)."""
    if not task.cancelled():
        task.exception()
