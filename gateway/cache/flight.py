"""Single flight: identical concurrent requests produce one upstream call.

Two layers. In one process, the first caller for a key (the local leader) registers an asyncio
Future; later callers await it. Across processes, the local leader takes a short Redis lease
(``SET NX PX``, renewed while it computes); a local leader that finds the lease taken polls the
value key until the holder stores its answer, the lease disappears (the holder failed or died:
this process takes over), or the wait times out. So each process asks Redis with at most one
poll loop per key, however many of its callers wait.

Failure handling, decided for mobile clients that retry:

* the leader's computation raises: in-process followers receive the same exception (they sent
  the identical request at the same moment; retrying each would multiply load on a failing
  upstream); other processes see the lease released and one of them computes afresh;
* the leader is cancelled (its client went away): followers are not failed, one becomes leader;
* a follower waits at most ``wait_timeout`` in total, then gets :class:`CoalesceTimeout` (504);
* the store is down: the lease is skipped and the local leader computes without storing;
  in-process coalescing keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

from gateway.cache.backends import CacheBackend
from gateway.errors import UpstreamTimeout
from gateway.store.layout import hash_tag
from gateway.store.redis import StoreUnavailable

FlightStatus = Literal["HIT", "COALESCED", "LEAD", "LEAD_LOCAL"]


class CoalesceTimeout(UpstreamTimeout):
    default_message = "timed out waiting for an identical request already in flight"


class FlightConflict(Exception):
    """A caller joined a key whose leader carries a different tag (idempotency: another body)."""


class _Abandoned(Exception):
    """The leader gave up without an answer or an error (cancelled): followers try again."""


@dataclass(eq=False)
class _Local:
    future: asyncio.Future[tuple[bytes, FlightStatus]]
    tag: bytes


@dataclass(eq=False)
class Ticket:
    """One caller's place in a flight: the value (``HIT``/``COALESCED``) or the duty to compute it
    (``LEAD``; ``LEAD_LOCAL`` when the store is down and nothing will be stored)."""

    flight: SingleFlight
    key: str
    status: FlightStatus
    value: bytes | None = None
    local: _Local | None = None
    token: bytes | None = None
    _renewer: asyncio.Task[None] | None = field(default=None, repr=False)
    settled: bool = False

    async def publish(self, value: bytes, *, ttl: float | None) -> bool:
        """Hand ``value`` to the followers, storing it first when ``ttl`` is given; True if stored."""
        stored = False
        if ttl is not None and self.status == "LEAD":
            with contextlib.suppress(StoreUnavailable):
                await self.flight.backend.set(self.flight.value_key(self.key), value, ttl)
                stored = True
        await self._release()
        self.flight._settle(self.key, self.local, (value, "COALESCED"))
        return stored

    async def fail(self, exc: BaseException | None = None) -> None:
        """Give up leading: followers get ``exc`` (an Exception), or take over (cancelled / None)."""
        await self._release()
        outcome = exc if isinstance(exc, Exception) else _Abandoned()
        self.flight._settle(self.key, self.local, outcome)

    async def _release(self) -> None:
        if self.settled:
            raise RuntimeError("this flight was already published or failed")
        self.settled = True
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        if self.token is not None:
            with contextlib.suppress(StoreUnavailable):
                await self.flight.backend.delete_if(self.flight.lease_key(self.key), self.token)

    async def __aenter__(self) -> Ticket:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.status in ("LEAD", "LEAD_LOCAL") and not self.settled:
            await self.fail(exc)


class SingleFlight:
    """Coordinates callers of one key namespace (``prefix``) over a backend."""

    def __init__(
        self,
        backend: CacheBackend,
        *,
        prefix: str,
        wait_timeout: float,
        lease_seconds: float = 5.0,
        poll_interval: float = 0.01,
        max_poll_interval: float = 0.1,
    ) -> None:
        self.backend = backend
        self.prefix = prefix
        self.wait_timeout = wait_timeout
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self._local: dict[str, _Local] = {}

    def value_key(self, key: str) -> str:
        return f"{self.prefix}:{hash_tag(key)}"

    def lease_key(self, key: str) -> str:
        """The lease beside its value, in the same cluster slot (one hash tag)."""
        return f"{self.prefix}:{hash_tag(key)}:lease"

    async def join(self, key: str, *, tag: bytes = b"") -> Ticket:
        """Find the value, wait for the leader computing it, or become that leader."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        while True:
            local = self._local.get(key)
            if local is not None:
                if local.tag != tag:
                    raise FlightConflict(key)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise CoalesceTimeout()
                try:
                    value, status = await asyncio.wait_for(asyncio.shield(local.future), remaining)
                except _Abandoned:
                    continue
                except TimeoutError:
                    raise CoalesceTimeout() from None
                return Ticket(self, key, status, value=value)
            local = _Local(loop.create_future(), tag)
            self._local[key] = local
            try:
                ticket = await self._find_or_lease(key, tag, local, deadline)
            except BaseException as exc:
                self._settle(key, local, exc if isinstance(exc, Exception) else _Abandoned())
                raise
            if ticket.value is not None:
                self._settle(key, local, (ticket.value, ticket.status))
            return ticket

    async def _find_or_lease(self, key: str, tag: bytes, local: _Local, deadline: float) -> Ticket:
        loop = asyncio.get_running_loop()
        vkey, lkey = self.value_key(key), self.lease_key(key)
        token = tag + b"\x00" + secrets.token_hex(8).encode()
        try:
            found = await self.backend.get(vkey)
            if found is not None:
                return Ticket(self, key, "HIT", value=found)
            interval = self.poll_interval
            while True:
                if await self.backend.add(lkey, token, self.lease_seconds):
                    # Double check: a leader elsewhere may have stored and released just now.
                    found = await self.backend.get(vkey)
                    if found is not None:
                        await self.backend.delete_if(lkey, token)
                        return Ticket(self, key, "COALESCED", value=found)
                    renewer = loop.create_task(self._renew(lkey, token))
                    return Ticket(self, key, "LEAD", local=local, token=token, _renewer=renewer)
                holder = await self.backend.get(lkey)
                while holder is not None:
                    if holder.partition(b"\x00")[0] != tag:
                        raise FlightConflict(key)
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise CoalesceTimeout()
                    await asyncio.sleep(min(interval, remaining))
                    interval = min(interval * 2, self.max_poll_interval)
                    found = await self.backend.get(vkey)
                    if found is not None:
                        return Ticket(self, key, "COALESCED", value=found)
                    holder = await self.backend.get(lkey)
        except StoreUnavailable:
            return Ticket(self, key, "LEAD_LOCAL", local=local)

    async def _renew(self, lkey: str, token: bytes) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await self.backend.expire_if(lkey, token, self.lease_seconds):
                    return  # lost the lease (it expired while the store was away); stop renewing
            except StoreUnavailable:
                continue

    def _settle(
        self, key: str, local: _Local | None, outcome: tuple[bytes, FlightStatus] | Exception
    ) -> None:
        if local is None:
            return
        if self._local.get(key) is local:
            del self._local[key]
        if local.future.done():
            return
        if isinstance(outcome, Exception):
            local.future.set_exception(outcome)
            local.future.exception()  # mark retrieved: having no followers is not an error
        else:
            local.future.set_result(outcome)
