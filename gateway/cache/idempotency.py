"""``Idempotency-Key`` (Stripe's semantics): a retried request gets the first answer.

Records live apart from the content cache (their own key prefix), scoped to the key owner,
for ``idempotency_ttl_seconds``. A record holds the body fingerprint and the answer, so:

* same key, same body, first answer stored  → that answer, at any temperature (replayed);
* same key, different body                  → :class:`~gateway.errors.IdempotencyConflict` (42201, HTTP 422);
* same key while the first is still running → waits for it (up to ``coalesce_timeout``), since a
  mobile client retrying after a dropped connection wants the answer, not a 409 to retry again;
* first attempt failed or was cut short     → nothing stored; the retry runs afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec

from gateway import metrics
from gateway.cache.backends import CacheBackend, backend_from_settings
from gateway.cache.flight import FlightConflict, SingleFlight, Ticket
from gateway.cache.model import CachedAnswer, is_storable
from gateway.cache.streams import Replay, StreamFlights, StreamTicket
from gateway.errors import IdempotencyConflict
from gateway.settings import Settings
from gateway.store.redis import ResilientRedis


class IdempotencyRecord(msgspec.Struct, frozen=True):
    body_hash: str
    answer: CachedAnswer


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(IdempotencyRecord)


def _count_replay(result: str) -> None:
    """A retry answered from its first attempt counts as the cache outcome its X-Cache header says."""
    metrics.CACHE_REQUESTS.labels(result=result).inc()


def _conflict(idempotency_key: str) -> IdempotencyConflict:
    return IdempotencyConflict(
        f"Idempotency-Key {idempotency_key!r} was already used with a different request body",
        param="Idempotency-Key",
    )


class IdempotentAttempt:
    """One attempt: ``answer`` to replay (``replayed`` True), or compute one and :meth:`publish` it."""

    def __init__(
        self,
        store: IdempotencyStore,
        body_hash: str,
        *,
        answer: CachedAnswer | None = None,
        ticket: Ticket | None = None,
    ) -> None:
        self.store = store
        self.body_hash = body_hash
        self.answer = answer
        self.ticket = ticket
        self.replayed = answer is not None

    async def publish(self, answer: CachedAnswer) -> None:
        """Record the complete answer for retries (an incomplete one is not recorded)."""
        if self.ticket is None:
            raise RuntimeError("nothing to publish: this attempt replays an earlier answer")
        record = _encoder.encode(IdempotencyRecord(self.body_hash, answer))
        await self.ticket.publish(record, ttl=self.store.ttl if is_storable(answer) else None)


class IdempotencyStore:
    """Answers by (owner, Idempotency-Key), checked against the body fingerprint."""

    def __init__(
        self,
        backend: CacheBackend,
        *,
        ttl: float,
        wait_timeout: float,
        lease_seconds: float = 5.0,
        prefix: str = "vlgw:idem",
    ) -> None:
        self.ttl = ttl
        self.flights = SingleFlight(
            backend, prefix=prefix, wait_timeout=wait_timeout, lease_seconds=lease_seconds
        )
        self.streams = StreamFlights(self.flights)

    @classmethod
    def from_settings(cls, settings: Settings, redis: ResilientRedis | None = None) -> IdempotencyStore:
        backend = backend_from_settings(settings, redis)
        return cls(backend, ttl=settings.idempotency_ttl_seconds, wait_timeout=settings.coalesce_timeout)

    @staticmethod
    def record_key(owner: str, idempotency_key: str) -> str:
        doc = msgspec.json.encode([owner, idempotency_key])  # unambiguous, unlike owner + ":" + key
        return hashlib.sha256(doc).hexdigest()

    @contextlib.asynccontextmanager
    async def attempt(
        self, *, owner: str, idempotency_key: str, body_hash: str
    ) -> AsyncIterator[IdempotentAttempt]:
        """Enter one attempt; raises IdempotencyConflict (42201) or CoalesceTimeout (504)."""
        try:
            ticket = await self.flights.join(self.record_key(owner, idempotency_key), tag=body_hash.encode())
        except FlightConflict:
            raise _conflict(idempotency_key) from None
        if ticket.value is not None:
            try:
                record = _decoder.decode(ticket.value)
            except (msgspec.DecodeError, msgspec.ValidationError):
                record = None
            if record is not None:
                if record.body_hash != body_hash:
                    raise _conflict(idempotency_key)
                _count_replay("hit")
                yield IdempotentAttempt(self, body_hash, answer=record.answer)
                return
            yield IdempotentAttempt(self, body_hash)  # unreadable record: answer afresh, record nothing
            return
        entry = IdempotentAttempt(self, body_hash, ticket=ticket)
        async with ticket:  # releases the flight when the body raises or never publishes
            yield entry

    async def join_stream(
        self, *, owner: str, idempotency_key: str, body_hash: str, replay: Replay
    ) -> StreamTicket:
        """One streaming attempt: replay the recorded answer, join the first attempt's live stream,
        or lead (the ticket records the complete answer when its stream ends)."""

        def decode(value: bytes) -> CachedAnswer | None:
            try:
                record = _decoder.decode(value)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return None
            if record.body_hash != body_hash:
                raise _conflict(idempotency_key)
            return record.answer

        def encode(answer: CachedAnswer) -> tuple[bytes, float | None]:
            return _encoder.encode(IdempotencyRecord(body_hash, answer)), self.ttl

        try:
            ticket = await self.streams.join(
                self.record_key(owner, idempotency_key),
                tag=body_hash.encode(),
                decode=decode,
                encode=encode,
                replay=replay,
            )
        except FlightConflict:
            raise _conflict(idempotency_key) from None
        if not ticket.leads:
            _count_replay("coalesced" if ticket.status == "LIVE" else "hit")
        return ticket

    async def run(
        self,
        *,
        owner: str,
        idempotency_key: str,
        body_hash: str,
        compute: Callable[[], Awaitable[CachedAnswer]],
    ) -> tuple[CachedAnswer, bool]:
        """The first answer for this Idempotency-Key, or ``compute()``'s; and whether it was replayed."""
        async with self.attempt(owner=owner, idempotency_key=idempotency_key, body_hash=body_hash) as att:
            if att.answer is not None:
                return att.answer, True
            answer = await compute()
            await att.publish(answer)
            return answer, False
