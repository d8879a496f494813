"""The storage interface of the app-developer features; Redis and embedded SQLite implement it.

Both raise :class:`~gateway.store.redis.StoreUnavailable` when the store cannot be reached, and
nothing else; callers decide what that means (a dropped record, a 503 on ``/v1/feedback``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import msgspec

from gateway.devex.model import FeedbackEntry, RequestRecord

UsageBatch = dict[tuple[str, str], dict[str, int]]
"""(key name, UTC date) -> field -> increment; fields are ``requests``, ..., ``err:<code>``."""


class DevexStore(Protocol):
    backend: str

    async def put_request(self, record: RequestRecord, ttl: int) -> None:
        """Keep ``record`` for ``ttl`` seconds, under (key name, request id)."""

    async def put_requests(self, records: Sequence[RequestRecord], ttl: int) -> None:
        """``put_request`` for a batch, in one round trip / transaction."""

    async def get_request(self, key_name: str, request_id: str) -> RequestRecord | None:
        """The unexpired record this key made with this id, or None."""

    async def add_feedback(self, entry: FeedbackEntry) -> str:
        """Append one feedback entry; returns its id."""

    def feedback_between(self, since: float, until: float) -> AsyncIterator[FeedbackEntry]:
        """Feedback received in ``[since, until)`` (unix seconds), oldest first."""

    async def add_usage(self, batch: UsageBatch) -> None:
        """Add the increments of ``batch`` to the per-key per-day counters."""

    async def get_usage(self, key_name: str, dates: list[str]) -> dict[str, dict[str, int]]:
        """The stored counters of ``key_name`` for each of ``dates`` that has any."""

    # --- backup and restore (``vlgw backup`` / ``vlgw restore``) -------------------------------

    def all_usage(self) -> AsyncIterator[tuple[str, str, dict[str, int]]]:
        """Every stored (key name, date, counters), in any order."""

    async def set_usage(self, key_name: str, date: str, fields: dict[str, int]) -> None:
        """Replace the counters of one key and day (restore: idempotent, unlike ``add_usage``)."""

    async def restore_feedback(self, entries: Sequence[FeedbackEntry]) -> int:
        """Add the entries not already stored (same content = same entry); returns how many were added."""


def feedback_digest(entry: FeedbackEntry) -> str:
    """Identity of a feedback entry across stores (ids are per store): SHA-256 of its content."""
    return hashlib.sha256(msgspec.json.encode(msgspec.structs.replace(entry, id=""))).hexdigest()
