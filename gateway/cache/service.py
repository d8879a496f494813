"""The response cache the routes use: lookup, single flight, store, metrics, in one place."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

from gateway import metrics
from gateway.cache.backends import CacheBackend, backend_from_settings
from gateway.cache.flight import SingleFlight, Ticket
from gateway.cache.keys import KeyMaterial, cache_key, scope_for
from gateway.cache.model import CachedAnswer, CacheStatus, decode_answer, encode_answer, is_storable
from gateway.cache.policy import CacheMode
from gateway.cache.streams import Replay, StreamFlights, StreamTicket, TicketStatus
from gateway.settings import Settings
from gateway.store.redis import ResilientRedis, StoreUnavailable


class CacheFlight:
    """One request's use of the cache: ``answer`` to replay, or compute one and :meth:`publish` it."""

    def __init__(
        self,
        cache: ResponseCache,
        key: str,
        status: CacheStatus,
        *,
        answer: CachedAnswer | None = None,
        ticket: Ticket | None = None,
        ttl: float,
    ) -> None:
        self.cache = cache
        self.key = key
        self.status = status
        self.answer = answer
        self.ticket = ticket
        self.ttl = ttl
        self.published = False

    async def publish(self, answer: CachedAnswer) -> None:
        """Give the complete answer to waiting followers and store it (when the policy allows).

        Call it once, when the answer is complete (a stream: after its last chunk). Not calling
        it (an aborted stream, an error) stores nothing and lets a follower take over.
        """
        if self.answer is not None or self.published:
            raise RuntimeError("nothing to publish: this flight already has its answer")
        self.published = True
        storable = is_storable(answer) and self.status != "BYPASS"
        if self.ticket is not None:
            ttl = self.ttl if storable else None
            if await self.ticket.publish(encode_answer(answer), ttl=ttl):
                metrics.CACHE_STORES.inc()
        elif storable:
            await self.cache.store(self.key, answer, ttl=self.ttl)


class ResponseCache:
    """Content-addressed cache of complete answers, with request coalescing."""

    def __init__(
        self,
        backend: CacheBackend,
        *,
        ttl: float,
        coalesce_timeout: float,
        scope: Literal["key", "global"] = "key",
        lease_seconds: float = 5.0,
        prefix: str = "vlgw:cache",
    ) -> None:
        self.backend = backend
        self.ttl = ttl
        self.scope: Literal["key", "global"] = scope
        self.flights = SingleFlight(
            backend, prefix=prefix, wait_timeout=coalesce_timeout, lease_seconds=lease_seconds
        )
        self.streams = StreamFlights(self.flights)

    @classmethod
    def from_settings(cls, settings: Settings, redis: ResilientRedis | None = None) -> ResponseCache:
        """Redis-backed when the gateway has Redis, else an embedded LRU."""
        backend = backend_from_settings(settings, redis)
        return cls(
            backend,
            ttl=settings.cache_ttl_seconds,
            coalesce_timeout=settings.coalesce_timeout,
            scope=settings.cache_scope,
        )

    def key(self, material: KeyMaterial, *, owner: str) -> str:
        """The key of a request by ``owner`` (the API key's name or id), in the configured scope."""
        return cache_key(material, scope=scope_for(owner, self.scope))

    async def get(self, key: str) -> CachedAnswer | None:
        """The stored answer, or None (also when the store is down). Counts no metrics."""
        try:
            data = await self.backend.get(self.flights.value_key(key))
        except StoreUnavailable:
            return None
        return None if data is None else decode_answer(data)

    async def store(self, key: str, answer: CachedAnswer, *, ttl: float | None = None) -> bool:
        """Store a complete answer (an incomplete one is refused); False when not stored."""
        if not is_storable(answer):
            return False
        try:
            await self.backend.set(self.flights.value_key(key), encode_answer(answer), ttl or self.ttl)
        except StoreUnavailable:
            return False
        metrics.CACHE_STORES.inc()
        return True

    @contextlib.asynccontextmanager
    async def flight(
        self, key: str, *, mode: CacheMode = CacheMode.USE, ttl: float | None = None
    ) -> AsyncIterator[CacheFlight]:
        """Enter the cache for one request; see :class:`CacheFlight`.

        Raises :class:`~gateway.cache.flight.CoalesceTimeout` (504) when an identical request
        stays in flight longer than ``coalesce_timeout``; never raises for a store failure.
        """
        ttl = ttl or self.ttl
        if mode is not CacheMode.USE:
            status: CacheStatus = "BYPASS" if mode is CacheMode.BYPASS else "MISS"
            _count(status)
            yield CacheFlight(self, key, status, ttl=ttl)
            return
        ticket = await self.flights.join(key)
        if ticket.value is not None:
            answer = decode_answer(ticket.value)
            if answer is None:  # unreadable entry: drop it and answer afresh without storing
                with contextlib.suppress(StoreUnavailable):
                    await self.backend.delete(self.flights.value_key(key))
                _count("BYPASS")
                yield CacheFlight(self, key, "BYPASS", ttl=ttl)
                return
            status = "HIT" if ticket.status == "HIT" else "COALESCED"
            _count(status)
            metrics.CACHE_SAVED_TOKENS.inc(answer.usage.total_tokens)
            yield CacheFlight(self, key, status, answer=answer, ttl=ttl)
            return
        status = "MISS" if ticket.status == "LEAD" else "BYPASS"
        _count(status)
        entry = CacheFlight(self, key, status, ticket=ticket, ttl=ttl)
        try:
            yield entry
        except BaseException as exc:
            if not entry.published:
                await ticket.fail(exc)
            raise
        if not entry.published:
            await ticket.fail(None)

    def bypassed(self) -> CacheStatus:
        """Count a request the cache takes no part in (policy, ``no-store``, disabled)."""
        _count("BYPASS")
        return "BYPASS"

    async def join_stream(
        self, key: str, *, mode: CacheMode, replay: Replay
    ) -> tuple[StreamTicket, CacheStatus]:
        """Enter the cache for one streaming request: follow the identical stream in flight (live),
        replay a stored answer, or lead (the ticket stores the complete answer at the end)."""
        if mode is not CacheMode.USE:
            status: CacheStatus = "BYPASS" if mode is CacheMode.BYPASS else "MISS"
            _count(status)
            refresh = mode is CacheMode.REFRESH
            return StreamTicket(
                "LEAD", _on_answer=(lambda a: self.store(key, a)) if refresh else None
            ), status
        ticket = await self.streams.join(
            key, decode=decode_answer, encode=self._encode, replay=replay, on_stored=metrics.CACHE_STORES.inc
        )
        status = _STREAM_STATUS[ticket.status]
        _count(status)
        if ticket.answer is not None:
            metrics.CACHE_SAVED_TOKENS.inc(ticket.answer.usage.total_tokens)
        return ticket, status

    def _encode(self, answer: CachedAnswer) -> tuple[bytes, float | None]:
        return encode_answer(answer), self.ttl

    async def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Awaitable[CachedAnswer]],
        *,
        mode: CacheMode = CacheMode.USE,
        ttl: float | None = None,
    ) -> tuple[CachedAnswer, CacheStatus]:
        """The cached answer, or ``compute()``'s (called at most once across identical requests)."""
        async with self.flight(key, mode=mode, ttl=ttl) as entry:
            if entry.answer is not None:
                return entry.answer, entry.status
            answer = await compute()
            await entry.publish(answer)
            return answer, entry.status


_STREAM_STATUS: dict[TicketStatus, CacheStatus] = {
    "LIVE": "COALESCED",
    "HIT": "HIT",
    "COALESCED": "COALESCED",
    "LEAD": "MISS",
    "LEAD_LOCAL": "BYPASS",
}


def _count(status: CacheStatus) -> None:
    metrics.CACHE_REQUESTS.labels(result=status.lower()).inc()
