"""An open upstream SSE stream with separate deadlines: connect, first token, gap between chunks.

One total timeout would kill long answers, so each phase has its own: the first event must come
within ``upstream_first_token_timeout`` (with keep-alive ticks every ``upstream_keepalive_seconds``
meanwhile, so the client's connection stays warm) and every later chunk within
``upstream_chunk_timeout`` of the previous one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from gateway import errors, metrics
from gateway.upstream.sse import DONE, SSEDecoder

KEEPALIVE = None
"""What ``events()`` yields when the upstream is still silent and a keep-alive is due."""


class UpstreamStream:
    """Iterate ``events()`` for ``data:`` payloads; always ``aclose()`` (closing aborts upstream work)."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        replica: str,
        *,
        first_token_timeout: float,
        chunk_timeout: float,
        keepalive_seconds: float,
        on_close: Callable[[], Awaitable[None]],
    ) -> None:
        self.response = response
        self.replica = replica
        self.first_token_timeout = first_token_timeout
        self.chunk_timeout = chunk_timeout
        self.keepalive_seconds = keepalive_seconds
        self.opened = time.perf_counter()
        self.first_event_at: float | None = None
        self.finished = False
        self._on_close = on_close
        self._closed = False

    async def events(self) -> AsyncIterator[bytes | None]:
        """``data:`` payloads as they arrive (``[DONE]`` excluded); ``None`` when a keep-alive is due."""
        decoder = SSEDecoder()
        raw = self.response.content.iter_any()
        deadline = self.opened + self.first_token_timeout
        last = self.opened
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(raw))
                if self.first_event_at is None:
                    wait = min(self.keepalive_seconds, deadline - time.perf_counter())
                    if wait <= 0:
                        raise errors.UpstreamTimeout(
                            f"no first token within {self.first_token_timeout:g} s",
                            extra={"stage": "first_token"},
                        )
                else:
                    wait = self.chunk_timeout
                done, _ = await asyncio.wait({pending}, timeout=wait)
                if not done:
                    if self.first_event_at is None:
                        if time.perf_counter() < deadline:
                            yield KEEPALIVE
                        continue  # the loop's head raises once the first-token deadline has passed
                    raise errors.UpstreamTimeout(
                        f"upstream silent for {self.chunk_timeout:g} s mid-stream",
                        extra={"stage": "chunk_gap"},
                    )
                chunk = self._result(pending)
                pending = None
                if chunk is None:
                    raise errors.UpstreamError("upstream stream ended before [DONE]")
                now = time.perf_counter()
                if self.first_event_at is not None:
                    metrics.STREAM_CHUNK_GAP.observe(now - last)
                last = now
                for payload in decoder.feed(chunk):
                    if self.first_event_at is None:
                        self.first_event_at = now
                    if payload == DONE:
                        self.finished = True
                        return
                    yield payload
        finally:
            if pending is not None and not pending.done():
                pending.cancel()

    @staticmethod
    def _result(pending: asyncio.Future[Any]) -> bytes | None:
        try:
            chunk: bytes = pending.result()
        except StopAsyncIteration:
            return None
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.UpstreamError("upstream broke the stream") from exc
        return chunk

    async def aclose(self) -> None:
        """Close the upstream connection (vLLM aborts the request and frees its GPU memory)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.finished:
                self.response.release()  # the answer is complete: the connection may be reused
            else:
                # An unfinished answer's connection is dropped: that is what makes vLLM abort it.
                self.response.close()
        finally:
            await self._on_close()
