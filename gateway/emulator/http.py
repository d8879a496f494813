"""A minimal ASGI request/response exchange: just what the emulator's few routes need."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import msgspec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = "application/json"
_encoder = msgspec.json.Encoder()


class ClientGone(Exception):
    """The client disconnected while the request body was being read."""


class DropConnection(Exception):
    """Raised by a handler to end the exchange without completing the response (the server then closes it)."""


async def read_body(receive: Receive) -> bytes:
    """The whole request body; raises ClientGone on a disconnect."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def wait_disconnect(receive: Receive) -> None:
    """Return when the server reports ``http.disconnect`` (the client left, or the response is done)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Exchange:
    """One request and the means to answer it, once."""

    def __init__(self, scope: Scope, body: bytes, send: Send) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        self.headers = headers
        self.body = body
        self._send = send
        self.started = False
        self.complete = False

    async def start(
        self, status: int, content_type: str | None, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Send the status line and headers."""
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        if content_type is not None:
            raw.append((b"content-type", content_type.encode("latin-1")))
        self.started = True
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def write(self, data: bytes) -> None:
        """Send one piece of a streamed body."""
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def finish(self, data: bytes = b"") -> None:
        """Send the last piece of the body."""
        self.complete = True
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    async def respond(
        self,
        status: int,
        body: bytes,
        content_type: str | None = JSON,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """A whole, non-streamed response."""
        await self.start(status, content_type, [*headers, ("content-length", str(len(body)))])
        await self.finish(body)

    async def json(self, obj: Any, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> None:
        """A JSON response."""
        await self.respond(status, _encoder.encode(obj), JSON, headers)


def encode(obj: Any) -> bytes:
    """JSON bytes (msgspec: fast, and knows Structs)."""
    return _encoder.encode(obj)
