"""A tiny raw HTTP/1.1 server and a canary listener on loopback, for fetch tests.

Raw on purpose: tests need responses no well-behaved framework sends (lying Content-Length,
a body that trickles forever, a redirect loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamWriter], Awaitable[None]]


class Canary:
    """A listener on 127.0.0.1 that only counts the connections it accepts."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Canary:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


class Httpd:
    """Routes request paths to handlers that write raw responses; records Host headers."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Httpd:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            self.requests.append((path, headers))
            handler = self.routes.get(path.split("?")[0], reply(404, b"not found", "text/plain"))
            await handler(writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def reply(
    status: int = 200,
    body: bytes = b"",
    content_type: str | None = "image/jpeg",
    *,
    headers: dict[str, str] | None = None,
    length: int | str | None = "auto",
) -> Handler:
    """A handler writing one response; ``length=None`` sends no Content-Length (close-delimited)."""

    async def handle(writer: asyncio.StreamWriter) -> None:
        lines = [f"HTTP/1.1 {status} X"]
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        if length == "auto":
            lines.append(f"Content-Length: {len(body)}")
        elif length is not None:
            lines.append(f"Content-Length: {length}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return handle


def redirect(location: str, status: int = 302) -> Handler:
    return reply(status, b"", None, headers={"Location": location})


def trickle(chunk: bytes, delay: float, count: int = 1000, content_type: str = "image/jpeg") -> Handler:
    """Headers at once, then a small chunk every ``delay`` seconds (a slow-drip body)."""

    async def handle(writer: asyncio.StreamWriter) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n".encode())
        for _ in range(count):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(delay)

    return handle


def stall(delay: float) -> Handler:
    """Accepts, then says nothing for ``delay`` seconds."""

    async def handle(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)

    return handle


def raw(data: bytes) -> Handler:
    """A handler writing ``data`` as the whole response, however malformed."""

    async def handle(writer: asyncio.StreamWriter) -> None:
        writer.write(data)

    return handle


def endless(content_type: str = "image/jpeg", chunk: bytes = b"\xff" * 65536) -> Handler:
    """A 200 whose body never ends (no length, as fast as the client reads)."""

    async def handle(writer: asyncio.StreamWriter) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\r\n".encode())
        for _ in range(100_000):  # bounded: 6.5 GB, far past any cap
            writer.write(chunk)
            await writer.drain()

    return handle
