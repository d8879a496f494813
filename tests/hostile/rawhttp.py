"""HTTP/1.1 over a raw socket, for requests no well-behaved client library will send.

httpx normalises paths, refuses control characters in headers and keeps Content-Length honest;
an attacker's client does none of that.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from dataclasses import dataclass, field


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes = field(repr=False)


def parse(raw: bytes) -> RawResponse | None:
    """The first response in ``raw`` (None when nothing came back)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(rest)))
    if len(rest) < length:
        return None  # not all of it yet
    return RawResponse(status, headers, rest[:length], raw)


def exchange(port: int, request: bytes, *, wait: float = 5.0, close_after: float | None = None) -> bytes:
    """Send ``request`` bytes as they are; return everything read until the server closes or
    ``wait`` seconds pass (``close_after``: give up sooner, as a client that leaves)."""
    deadline = time.monotonic() + (close_after if close_after is not None else wait)
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(request)
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], left)
            if not readable:
                break
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def request_bytes(
    method: str, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b"", *, length: bool = True
) -> bytes:
    """One request exactly as given; ``length`` adds an honest Content-Length."""
    lines = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    if length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass
class Upload:
    """What a client streaming a large body managed to send before the server answered."""

    sent: int
    response: RawResponse | None


def upload_until_answered(
    port: int, head: bytes, total: int, *, chunked: bool = False, timeout: float = 30.0
) -> Upload:
    """Send ``head`` then up to ``total`` body bytes (``chunked``: framed as 64 KiB chunks),
    stopping once a whole response has arrived.

    The send buffer is kept small so ``sent`` is close to what the server let in (kernel buffers
    on both sides still hold a few MB; the test bounds are far above that and far below ``total``).
    """
    chunk = 64 * 1024
    frame = b"%x\r\n" % chunk + b"x" * chunk + b"\r\n" if chunked else b"x" * chunk
    pending = b""
    sent = 0
    received = b""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sock.connect(("127.0.0.1", port))
        sock.sendall(head)
        sock.setblocking(False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            want_write = [sock] if sent < total else []
            readable, writable, _ = select.select([sock], want_write, [], 0.5)
            if readable:
                with contextlib.suppress(BlockingIOError):
                    data = sock.recv(65536)
                    received += data
                    if not data or parse(received) is not None:
                        break
            elif writable:
                pending = pending or frame
                try:
                    written = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += written
                pending = pending[written:]
        # Whatever is still on its way (the server may have answered as the pipe broke).
        sock.setblocking(True)
        sock.settimeout(2)
        with contextlib.suppress(OSError):
            while parse(received) is None and (data := sock.recv(65536)):
                received += data
    return Upload(sent, parse(received))
