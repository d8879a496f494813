"""The hot-path side: request records and usage counters, written without delaying any answer.

* ``record_request`` buffers the record and returns at once; within ``REQUEST_FLUSH_SECONDS`` the
  buffer is written as one batch (a pipelined Redis SET EX batch / one SQLite transaction). At
  most ``MAX_PENDING_WRITES`` records wait; beyond that they are dropped and counted
  (``gateway_devex_dropped{kind="request"}``) rather than queued without bound.
* ``record_usage`` only adds to an in-memory table; a background task flushes it every
  ``USAGE_FLUSH_SECONDS`` as one batch (a pipelined HINCRBY batch in Redis, one UPSERT
  transaction in SQLite). A failed flush puts the counts back and retries on the next tick, so a
  short Redis outage loses nothing; the table is bounded by ``MAX_BUFFERED_ROWS``.

Store failures are logged, counted in ``gateway_devex_store_errors`` and never raised here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Sequence

import structlog

from gateway import metrics
from gateway.devex.model import ERROR_PREFIX, REQUEST_TTL_SECONDS, RequestRecord, utc_day
from gateway.devex.store import DevexStore, UsageBatch
from gateway.store.redis import StoreUnavailable

log = structlog.get_logger("gateway.devex")

MAX_PENDING_WRITES = 1000
REQUEST_FLUSH_SECONDS = 0.1
USAGE_FLUSH_SECONDS = 1.0
MAX_BUFFERED_ROWS = 50_000


class Recorder:
    """Request records and usage counters for one process, written in the background."""

    def __init__(
        self, store: DevexStore, *, store_images: bool = False, flush_seconds: float = USAGE_FLUSH_SECONDS
    ) -> None:
        self.store = store
        self.store_images = store_images
        self.flush_seconds = flush_seconds
        self._records: list[RequestRecord] = []
        self._request_flush: asyncio.Task[None] | None = None
        self._usage: UsageBatch = {}
        self._flusher: asyncio.Task[None] | None = None

    # --- request records ------------------------------------------------------------------------

    def record_request(self, record: RequestRecord, images: Sequence[bytes] = ()) -> None:
        """Keep ``record`` for feedback (7 days); images' bytes only when the operator opted in."""
        if len(self._records) >= MAX_PENDING_WRITES:
            metrics.DEVEX_DROPPED.labels(kind="request").inc()
            return
        record = record.clipped()
        if not record.created:
            record.created = time.time()
        if self.store_images and images:
            record.images_b64 = [base64.b64encode(data).decode("ascii") for data in images]
        self._records.append(record)
        if self._request_flush is None or self._request_flush.done():
            # One write per batch, not per request: a task, a thread hop and a commit per request
            # were a measurable share of the gateway's CPU per request.
            self._request_flush = asyncio.get_running_loop().create_task(self._flush_requests_soon())

    async def _flush_requests_soon(self) -> None:
        await asyncio.sleep(REQUEST_FLUSH_SECONDS)
        await self.flush_requests()

    async def flush_requests(self) -> None:
        """Write the buffered request records now (dropped, and counted, if the store is down)."""
        batch, self._records = self._records, []
        if not batch:
            return
        try:
            await self.store.put_requests(batch, REQUEST_TTL_SECONDS)
        except StoreUnavailable as exc:
            metrics.DEVEX_STORE_ERRORS.labels(op="put_request").inc()
            log.warning("devex_store_failed", op="put_request", error=str(exc), records=len(batch))

    async def settled(self) -> None:
        """Write the request records buffered so far (feedback reads after them)."""
        await self.flush_requests()
        if self._request_flush is not None and not self._request_flush.done():
            with contextlib.suppress(Exception):
                await self._request_flush

    # --- usage ---------------------------------------------------------------------------------

    def record_usage(
        self,
        key_name: str,
        *,
        code: int,
        usage: tuple[int, int] | None,
        cached: bool,
        now: float | None = None,
    ) -> None:
        """Count one answered request: ``usage`` is (prompt, completion) tokens when known."""
        row_key = (key_name, utc_day(time.time() if now is None else now))
        row = self._usage.get(row_key)
        if row is None:
            if len(self._usage) >= MAX_BUFFERED_ROWS:
                metrics.DEVEX_DROPPED.labels(kind="usage").inc()
                return
            row = self._usage[row_key] = {}
        _add(row, "requests", 1)
        if usage is not None:
            _add(row, "prompt_tokens", usage[0])
            _add(row, "completion_tokens", usage[1])
        if cached:
            _add(row, "cache_hits", 1)
        if code != 0:
            _add(row, f"{ERROR_PREFIX}{code}", 1)

    async def flush_usage(self) -> None:
        """Write the buffered counts now; on failure they go back into the buffer."""
        batch, self._usage = self._usage, {}
        if not batch:
            return
        try:
            await self.store.add_usage(batch)
        except StoreUnavailable as exc:
            metrics.DEVEX_STORE_ERRORS.labels(op="add_usage").inc()
            log.warning("devex_store_failed", op="add_usage", error=str(exc), rows=len(batch))
            for row_key, fields in batch.items():
                row = self._usage.setdefault(row_key, {})
                for field, amount in fields.items():
                    _add(row, field, amount)

    async def start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_loop(), name="devex-usage-flush"
            )

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush_usage()

    async def aclose(self) -> None:
        """Stop flushing; write what is buffered and wait for pending records (best effort)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.settled()
        await self.flush_usage()


def _add(row: dict[str, int], field: str, amount: int) -> None:
    row[field] = row.get(field, 0) + amount
