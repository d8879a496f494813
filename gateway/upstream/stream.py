"""An open upstream SSE stream with separate deadlines, retried elsewhere until its first token.

One total timeout would kill long answers, so each phase has its own: the first event must come
within ``upstream_first_token_timeout`` (with keep-alive ticks every ``upstream_keepalive_seconds``
meanwhile, so the client's connection stays warm) and every later chunk within
``upstream_chunk_timeout`` of the previous one.

vLLM sends its 200 and headers before the engine runs, so a replica can die after "answering"
and before producing anything. Until the first chunk that carries output (text, a finish
reason), chunks are held back and a retryable failure reopens the request on another replica
(:class:`UpstreamStream`); the client saw at most keep-alive comments, so nothing is replayed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import msgspec

from gateway import errors, metrics
from gateway.upstream.sse import DONE, SSEDecoder
from gateway.upstream.wire import UpstreamChatChunk

KEEPALIVE = None
"""What ``events()`` yields when the upstream is still silent and a keep-alive is due."""


class StreamAttempt:
    """One replica's open SSE response; always ``aclose()`` (closing aborts upstream work)."""

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
                        raise errors.FirstTokenTimeout(
                            f"no first token within {self.first_token_timeout:g} s"
                        )
                else:
                    wait = self.chunk_timeout
                done, _ = await asyncio.wait({pending}, timeout=wait)
                if not done:
                    if self.first_event_at is None:
                        if time.perf_counter() < deadline:
                            yield KEEPALIVE
                        continue  # the loop's head raises once the first-token deadline has passed
                    raise errors.ChunkGapTimeout(f"upstream silent for {self.chunk_timeout:g} s mid-stream")
                chunk = self._result(pending)
                pending = None
                if chunk is None:
                    raise errors.UpstreamStreamBroken("upstream stream ended before [DONE]")
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
            raise errors.UpstreamStreamBroken() from exc
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


_peek = msgspec.json.Decoder(UpstreamChatChunk).decode


def carries_output(payload: bytes) -> bool:
    """Whether a chunk holds something the client must see (text or a finish reason)."""
    try:
        chunk = _peek(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return True  # an error event or something odd: let the relay judge it
    return any(choice.delta.content or choice.finish_reason for choice in chunk.choices)


Reopen = Callable[[StreamAttempt, errors.GatewayError, frozenset[str]], Awaitable[StreamAttempt]]
"""Report the failed attempt and open the request on a replica not in the set (or raise)."""


class UpstreamStream:
    """The stream a relay reads: ``events()`` yields ``data:`` payloads (``None`` for a keep-alive).

    Failures before the first output chunk are retried on another replica through ``reopen``, at
    most ``retries`` times; after it they propagate (bytes of the answer may have gone out).
    """

    def __init__(self, first: StreamAttempt, reopen: Reopen, *, retries: int) -> None:
        self._current = first
        self._reopen = reopen
        self._retries = retries
        self.committed = False

    @property
    def replica(self) -> str:
        return self._current.replica

    @property
    def finished(self) -> bool:
        return self._current.finished

    async def events(self) -> AsyncIterator[bytes | None]:
        tried = {self._current.replica}
        while True:
            held: list[bytes] = []
            try:
                async for payload in self._current.events():
                    if payload is None or self.committed:
                        yield payload
                        continue
                    held.append(payload)
                    if carries_output(payload):
                        self.committed = True
                        for item in held:
                            yield item
                        held.clear()
                for item in held:  # a complete answer with no output at all
                    yield item
                return
            except errors.GatewayError as exc:
                if self.committed or not exc.retryable or self._retries <= 0:
                    raise
                self._retries -= 1
                failed = self._current
                await failed.aclose()
                try:
                    self._current = await self._reopen(failed, exc, frozenset(tried))
                except errors.ServiceUnavailable:
                    raise exc from None  # no other replica: the client sees the real failure
                tried.add(self._current.replica)

    async def aclose(self) -> None:
        """Close the upstream connection (vLLM aborts the request and frees its GPU memory)."""
        await self._current.aclose()
