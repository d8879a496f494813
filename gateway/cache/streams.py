"""Single flight for streams: identical requests share one live broadcast, not just the final answer.

In one process, the first caller of a key registers its place at once (no await between the
lookup and the registration), so every identical caller that arrives while the leader streams
subscribes to the leader's :class:`~gateway.cache.broadcast.Broadcast` and receives tokens as
the leader receives them, replaying what it missed. Across processes the leader holds the
:class:`~gateway.cache.flight.SingleFlight` lease, so another process waits for the complete
answer and replays it (the lease hands the answer over, not the tokens).

When the broadcast ends complete, the leader publishes the encoded answer (stored when ``ttl``
allows, handed to waiting JSON callers of the same key); cut short or failed, nothing is stored
and waiting callers take over (or get the same error), as for JSON answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from gateway.cache.broadcast import Broadcast
from gateway.cache.flight import FlightConflict, SingleFlight, Ticket
from gateway.cache.model import CachedAnswer, is_storable

StreamItem = bytes | None
"""A stream's unit: one upstream ``data:`` payload, or ``None`` for a keep-alive."""

TicketStatus = Literal["LIVE", "HIT", "COALESCED", "LEAD", "LEAD_LOCAL"]
"""Follow a stream in progress; replay a stored answer (found, or handed over by another
process's leader); lead (``LEAD_LOCAL``: the store is down, nothing will be stored)."""

Replay = Callable[[CachedAnswer], list[StreamItem]]
"""How a stored answer becomes stream items (the pipeline knows the chunk format)."""


@dataclass(eq=False)
class _Live:
    tag: bytes
    broadcast: asyncio.Future[Broadcast[StreamItem]]


@dataclass(eq=False)
class StreamTicket:
    """One streaming caller's place: a ``broadcast`` to follow, or the duty to :meth:`lead`."""

    status: TicketStatus
    broadcast: Broadcast[StreamItem] | None = None
    answer: CachedAnswer | None = None  # the stored answer a replay comes from
    _flights: StreamFlights | None = None
    _key: str = ""
    _live: _Live | None = None
    _ticket: Ticket | None = None
    _publish: Callable[[CachedAnswer], tuple[bytes, float | None]] | None = None
    _on_answer: Callable[[CachedAnswer], Awaitable[object]] | None = None  # without a flight
    _on_stored: Callable[[], None] | None = None
    _settled: bool = field(default=False, repr=False)

    @property
    def leads(self) -> bool:
        """True when this caller must produce the stream (nothing to follow or replay)."""
        return self.broadcast is None

    async def lead(self, broadcast: Broadcast[StreamItem]) -> None:
        """Lead with ``broadcast``: waiting callers follow it; its end publishes or releases the key."""
        if self._live is not None and not self._live.broadcast.done():
            self._live.broadcast.set_result(broadcast)
        await broadcast.when_closed(lambda answer: self._finish(answer, broadcast.error))

    async def fail(self, exc: BaseException) -> None:
        """Give up before there is a broadcast (the upstream refused): callers get the same error."""
        if self._live is not None and not self._live.broadcast.done():
            self._live.broadcast.set_exception(
                exc if isinstance(exc, Exception) else RuntimeError("abandoned")
            )
            self._live.broadcast.exception()  # retrieved: having no followers is not an error
        await self._finish(None, exc)

    async def _finish(self, answer: CachedAnswer | None, error: BaseException | None) -> None:
        if self._settled:
            return
        self._settled = True
        if self._flights is not None and self._live is not None:
            self._flights.forget(self._key, self._live)
        if self._ticket is None:
            if answer is not None and self._on_answer is not None:
                await self._on_answer(answer)
            return
        if self._ticket.settled:
            return
        if answer is not None and self._publish is not None:
            value, ttl = self._publish(answer)
            if (
                await self._ticket.publish(value, ttl=ttl if is_storable(answer) else None)
                and self._on_stored
            ):
                self._on_stored()
        else:
            await self._ticket.fail(error)


class StreamFlights:
    """Live broadcasts by key over a :class:`SingleFlight` namespace."""

    def __init__(self, flights: SingleFlight) -> None:
        self.flights = flights
        self._live: dict[str, _Live] = {}

    def forget(self, key: str, live: _Live) -> None:
        if self._live.get(key) is live:
            del self._live[key]

    async def join(
        self,
        key: str,
        *,
        tag: bytes = b"",
        decode: Callable[[bytes], CachedAnswer | None],
        encode: Callable[[CachedAnswer], tuple[bytes, float | None]],
        replay: Replay,
        on_stored: Callable[[], None] | None = None,
    ) -> StreamTicket:
        """Follow the live broadcast of ``key``, replay its stored answer, or lead it.

        Raises :class:`~gateway.cache.flight.FlightConflict` when the key is held under another
        ``tag``, and whatever the leader failed with to callers that waited for its broadcast.
        """
        live = self._live.get(key)
        if live is not None:
            if live.tag != tag:
                raise FlightConflict(key)
            broadcast = await asyncio.shield(live.broadcast)
            return StreamTicket("LIVE", broadcast=broadcast)
        live = _Live(tag, asyncio.get_running_loop().create_future())
        self._live[key] = live  # before any await: identical callers from now on follow this one
        try:
            ticket = await self.flights.join(key, tag=tag)
            answer = None if ticket.value is None else decode(ticket.value)
        except BaseException as exc:
            self.forget(key, live)
            live.broadcast.set_exception(exc if isinstance(exc, Exception) else RuntimeError("abandoned"))
            live.broadcast.exception()
            raise
        if ticket.value is not None:
            if answer is None:  # unreadable: lead afresh, storing nothing
                return StreamTicket("LEAD_LOCAL", _flights=self, _key=key, _live=live)
            self.forget(key, live)
            replayed = Broadcast.complete(replay(answer), answer)
            live.broadcast.set_result(replayed)
            return StreamTicket(ticket.status, broadcast=replayed, answer=answer)
        return StreamTicket(
            ticket.status,
            _flights=self,
            _key=key,
            _live=live,
            _ticket=ticket,
            _publish=encode,
            _on_stored=on_stored,
        )
