"""Emulator fixtures: a factory starting real emulators on loopback, and test images."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from PIL import Image

from gateway.emulator import EmulatorApp, EmulatorConfig, create_emulator_app
from tests.servers import ThreadedServer, serve

MODEL = "qwen3-vl-8b"


class Emulator:
    """A running emulator: its URL, its app (for ``app.state``) and a client."""

    def __init__(self, server: ThreadedServer, app: EmulatorApp) -> None:
        self.server = server
        self.app = app
        self.url = server.url
        self.client = httpx.Client(base_url=server.url, timeout=10)

    def chat(self, **body: Any) -> httpx.Response:
        body.setdefault("model", MODEL)
        body.setdefault("messages", [{"role": "user", "content": "hello"}])
        return self.client.post("/v1/chat/completions", json=body)

    def stats(self) -> dict[str, Any]:
        return self.client.get("/emulator/stats").json()  # type: ignore[no-any-return]

    def wait_stats(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 1.0) -> dict[str, Any]:
        """Poll the stats until ``predicate`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            if time.monotonic() > deadline:
                raise AssertionError(f"stats never matched within {timeout}s: {stats}")
            time.sleep(0.02)


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., Emulator]]:
    """``start_emulator(**EmulatorConfig fields)`` -> a running Emulator, stopped after the test."""
    with ExitStack() as stack:

        def start(**config: Any) -> Emulator:
            app = create_emulator_app(EmulatorConfig(**config))
            server = stack.enter_context(serve(app))
            emulator = Emulator(server, app)
            stack.callback(emulator.client.close)
            return emulator

        yield start


@pytest.fixture
def emulator(start_emulator: Callable[..., Emulator]) -> Emulator:
    return start_emulator()


def image_bytes(
    width: int = 640, height: int = 480, colour: tuple[int, int, int] = (127, 127, 127), fmt: str = "JPEG"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, fmt)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_message(text: str, *urls: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": parts}]
