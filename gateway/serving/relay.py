"""Rendering a stream's chunks to one client, in the app's SSE shape or OpenAI's, as they arrive.

The source is a subscription to a :class:`~gateway.cache.broadcast.Broadcast` (live, or a stored
answer replayed); bytes go out as they come in. Whatever ends the relay, the subscription is
closed in ``finally`` under a shield, so when the last client hangs up the producer stops and
vLLM aborts the request at once. A failure after the first byte becomes one error event before
``[DONE]``, never a clean end.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import msgspec

from gateway import errors, metrics
from gateway.upstream.sse import SSE_DONE, SSE_KEEPALIVE, sse_event
from gateway.upstream.wire import UpstreamChatChunk, Usage

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_decode_chunk = msgspec.json.Decoder(UpstreamChatChunk).decode
_encode = msgspec.json.Encoder().encode


@dataclass
class StreamResult:
    """What a stream produced, for accounting and for caching complete answers."""

    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    completed: bool = False
    failed: bool = False
    sent: bool = False  # bytes reached the client: failures from now on are SSE events
    first_token_at: float | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


OnDone = Callable[[StreamResult], Awaitable[None]]


def _observe(chunk: UpstreamChatChunk, result: StreamResult) -> str | None:
    if chunk.usage is not None:
        result.usage = chunk.usage
    if chunk.model:
        result.model = chunk.model
    text = None
    for choice in chunk.choices[:1]:
        if choice.delta.content:
            text = choice.delta.content
            result.parts.append(text)
        if choice.finish_reason:
            result.finish_reason = choice.finish_reason
    return text


def observe_payload(payload: bytes, result: StreamResult) -> tuple[UpstreamChatChunk, str | None]:
    """Decode one upstream chunk into ``result``; its text delta. An error event raises."""
    chunk = _decode_chunk(payload)
    if chunk.error is not None:
        raise _upstream_error(chunk)
    return chunk, _observe(chunk, result)


def _upstream_error(chunk: UpstreamChatChunk) -> errors.GatewayError:
    detail = chunk.error if isinstance(chunk.error, dict) else {"message": str(chunk.error)}
    return errors.UpstreamError(f"upstream failed mid-stream: {detail.get('message', 'unknown error')}")


Source = AsyncGenerator[bytes | None, None]
"""Upstream ``data:`` payloads (``None``: a keep-alive is due), from a broadcast subscription."""


async def _finish(source: Source, result: StreamResult, on_done: OnDone | None) -> None:
    # Shielded: when the client hung up this task is being cancelled, yet the subscription must
    # still be closed, so that the upstream is aborted when nobody else follows it.
    if result.completed:
        outcome = "completed"
    elif result.failed:
        outcome = "upstream_aborted"
    else:
        outcome = "client_aborted"
    with anyio.CancelScope(shield=True):
        await source.aclose()
        metrics.STREAMS.labels(outcome=outcome).inc()
        if on_done is not None:
            await on_done(result)


def _as_gateway_error(exc: Exception) -> errors.GatewayError:
    if isinstance(exc, errors.GatewayError):
        return exc
    return errors.UpstreamError("unreadable upstream chunk")


def _sent(result: StreamResult, data: bytes) -> bytes:
    result.sent = True
    return data


def _failure(result: StreamResult, exc: Exception) -> errors.GatewayError:
    """Mark the stream failed; raise when nothing reached the client yet (a plain HTTP error then)."""
    result.failed = True
    err = _as_gateway_error(exc)
    if not result.sent:
        raise err from exc
    return err


_RELAY_ERRORS = (errors.GatewayError, msgspec.DecodeError, msgspec.ValidationError)


async def _chunks(
    source: Source, result: StreamResult, *, route: str, started: float | None
) -> AsyncIterator[tuple[bytes, UpstreamChatChunk, str | None] | None]:
    """Decoded chunks with their raw payload and text delta; ``None`` for a keep-alive.

    ``started`` is when the request arrived, for the time to first token (None for a replay)."""
    metrics.STREAMS.labels(outcome="started").inc()
    async for payload in source:
        if payload is None:
            yield None
            continue
        chunk, text = observe_payload(payload, result)
        if text and result.first_token_at is None and started is not None:
            result.first_token_at = time.perf_counter()
            metrics.TIME_TO_FIRST_TOKEN.labels(route=route).observe(result.first_token_at - started)
        yield payload, chunk, text
    result.completed = True


async def relay_app(
    source: Source, *, request_id: str, route: str, started: float | None, on_done: OnDone | None = None
) -> AsyncIterator[bytes]:
    """The app contract's SSE: ``{"text": delta}`` events, a final ``{"code": 0, ...}``, ``[DONE]``."""
    result = StreamResult()
    try:
        async for item in _chunks(source, result, route=route, started=started):
            if item is None:
                yield _sent(result, SSE_KEEPALIVE)
            elif item[2]:
                yield _sent(result, b'data: {"text":' + _encode(item[2]) + b"}\n\n")
        final = {"code": 0, "usage": result.usage or Usage(), "finish_reason": result.finish_reason}
        yield sse_event(_encode({**final, "request_id": request_id}))
    except _RELAY_ERRORS as exc:
        err = _failure(result, exc)
        yield sse_event(_encode({"code": err.code, "message": err.message, "request_id": request_id}))
    finally:
        await _finish(source, result, on_done)
    yield SSE_DONE


async def relay_openai(
    source: Source,
    *,
    route: str,
    started: float | None,
    include_usage: bool,
    on_done: OnDone | None = None,
) -> AsyncIterator[bytes]:
    """OpenAI's SSE, relayed chunk for chunk; the usage chunk only if the client asked for it."""
    result = StreamResult()
    try:
        async for item in _chunks(source, result, route=route, started=started):
            if item is None:
                yield _sent(result, SSE_KEEPALIVE)
            elif item[1].choices or include_usage:
                yield _sent(result, b"data: " + item[0] + b"\n\n")
    except _RELAY_ERRORS as exc:
        err = _failure(result, exc)
        error = {"message": err.message, "type": "upstream_error", "param": None, "code": err.code}
        yield sse_event(_encode({"error": error}))
    finally:
        await _finish(source, result, on_done)
    yield SSE_DONE


async def primed(relay: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Wait for the relay's first bytes (a token, a keep-alive or the end) before the response starts.

    Errors before that point propagate to the caller, so they become ordinary JSON error
    responses with their HTTP status instead of an event inside a 200 stream.
    """
    first = await anext(relay)

    async def chained() -> AsyncIterator[bytes]:
        yield first
        async for item in relay:
            yield item

    return chained()
