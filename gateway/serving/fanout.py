"""The producer side of a live stream: one task reads vLLM into a broadcast every client follows.

The task, not any one client, owns the upstream stream. The leader's client is a subscriber like
the followers: when it hangs up the upstream keeps going for the followers that remain, and when
the last subscriber leaves the task is cancelled, which closes the upstream connection so vLLM
aborts the request (decided in docs/cache.md, "Streams").
"""

from __future__ import annotations

import asyncio

import anyio
import msgspec
import structlog

from gateway import errors
from gateway.cache.broadcast import Broadcast
from gateway.serving.answers import cached_from_stream
from gateway.serving.relay import StreamResult, observe_payload
from gateway.upstream.stream import UpstreamStream

log = structlog.get_logger("gateway.serving.fanout")

StreamBroadcast = Broadcast[bytes | None]


def start_pump(stream: UpstreamStream, broadcast: StreamBroadcast, model: str) -> asyncio.Task[None]:
    """Feed ``broadcast`` from ``stream`` in a task that stops when nobody follows any more."""
    task = asyncio.get_running_loop().create_task(_pump(stream, broadcast, model))
    broadcast.on_abandoned = task.cancel
    return task


def _as_gateway_error(exc: Exception) -> errors.GatewayError:
    if isinstance(exc, errors.GatewayError):
        return exc
    if not isinstance(exc, msgspec.DecodeError | msgspec.ValidationError):
        log.error("stream_pump_failed", exc_info=exc)
    return errors.UpstreamError("unreadable upstream chunk")


async def _pump(stream: UpstreamStream, broadcast: StreamBroadcast, model: str) -> None:
    result = StreamResult()
    try:
        async for payload in stream.events():
            if payload is not None:
                observe_payload(payload, result)  # raises on an error event
            broadcast.append(payload)
        result.completed = True
    except Exception as exc:  # every failure reaches the clients as an error, never as a clean end
        result.failed = True
        broadcast.fail(_as_gateway_error(exc))
    finally:
        # Shielded: a cancelled pump (every client left) must still close the upstream connection.
        with anyio.CancelScope(shield=True):
            await stream.aclose()
            await broadcast.close(cached_from_stream(result, model))
