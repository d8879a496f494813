"""Splitting an upstream Server-Sent Events byte stream into ``data:`` payloads."""

from __future__ import annotations

DONE = b"[DONE]"


class SSEDecoder:
    """Feed raw bytes as they arrive; get back complete ``data:`` payloads (without the prefix)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        if b"\n\n" not in self._buffer and b"\r\n\r\n" not in self._buffer:
            return []
        text = self._buffer.replace(b"\r\n", b"\n")
        *events, self._buffer = text.split(b"\n\n")
        payloads = []
        for event in events:
            data = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
            if data:
                payloads.append(b"\n".join(data))
        return payloads


def sse_event(payload: bytes) -> bytes:
    """One SSE event carrying ``payload`` as its data."""
    return b"data: " + payload + b"\n\n"


SSE_DONE = sse_event(DONE)
SSE_KEEPALIVE = b": keep-alive\n\n"
