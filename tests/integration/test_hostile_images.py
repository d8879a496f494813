"""The hostile image corpus end to end: gateway and emulator as real servers on loopback, each case
sent as a client would (app route and OpenAI route), each answered with the contract's code and
never a 5xx. Bombs are built in tests/unit/images/bombs.py (each builder names its attack)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.images import photo_jpeg
from tests.integration.conftest import emulator_stats
from tests.servers import ThreadedServer, serve
from tests.unit.images import bombs, factory

pytestmark = pytest.mark.slow

# Built when a test uses them, not when the module is collected.
BOMBS: dict[str, tuple[Callable[[], bytes], int]] = {
    "jpeg-scan-bomb": (lambda: bombs.jpeg_scan_bomb(2000), 41301),
    "jpeg-33-scans": (lambda: bombs.jpeg_scan_bomb(33), 41301),
    "png-zlib-bomb-49mp": (lambda: bombs.png_zlib_bomb(7000, 7000), 41301),
    "png-header-bomb": (lambda: factory.png_bomb(100_000, 100_000), 41301),
    "gif-canvas-bomb": (lambda: bombs.gif_canvas_bomb(7000, 7000), 41301),
    "webp-canvas-bomb": (lambda: bombs.webp_canvas_bomb(7000, 7000), 41301),
    "webp-frame-bomb": (lambda: bombs.webp_canvas_bomb(64, 64, frames=1001), 41301),
    "heic-declaring-30k": (lambda: bombs.heic_declaring(30_000, 30_000), 41301),
    "truncated-jpeg": (lambda: bombs.truncated(factory.photo(320, 240)), 40002),
    "truncated-png": (lambda: bombs.truncated(factory.photo(320, 240, fmt="PNG")), 40002),
    "truncated-webp": (lambda: bombs.truncated(factory.photo(320, 240, fmt="WEBP")), 40002),
    "truncated-gif": (lambda: bombs.truncated(factory.photo(320, 240, fmt="GIF")), 40002),
    "svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 40002),
    # Accepted: the work is bounded (first frame only, payload cut) and the answer is a 200.
    "apng-frame-bomb": (lambda: bombs.apng_frame_bomb(100_000), 0),
    "gif-frame-bomb": (lambda: bombs.gif_frame_bomb(20_000), 0),
    "jpeg-zip-polyglot": (lambda: bombs.jpeg_zip_polyglot(), 0),
    "png-html-polyglot": (lambda: bombs.png_html_polyglot(), 0),
    "progressive-jpeg": (lambda: bombs.progressive_jpeg(2048, 1536), 0),
}

# Only loopback targets: the gateway here refuses private addresses (its default), with the
# origin allowlisted by host:port, so every other loopback port or form is an SSRF attempt.
URLS: dict[str, tuple[str, int]] = {
    "overlong-path": ("{origin}/" + "a" * 70_000, 40003),
    "other-loopback-port": ("http://127.0.0.1:6379/", 40003),
    "decimal-loopback": ("http://2130706433/x.jpg", 40003),
    "octal-loopback": ("http://0177.0.0.1/x.jpg", 40003),
    "mapped-loopback": ("http://[::ffff:127.0.0.1]/x.jpg", 40003),
    "unicode-dots": ("http://127\u30020\u30020\u30022:{p}/x.jpg", 40003),
    "localhost": ("http://localhost/x.jpg", 40003),
    "gopher": ("gopher://127.0.0.1:6379/_FLUSHALL", 40003),
    "credentials": ("http://user:pass@127.0.0.1:{p}/x.jpg", 40003),
    "bad-redirect": ("{origin}/bad-redirect", 40003),
    "redirect-to-loopback": ("{origin}/to-loopback", 40003),
    "html": ("{origin}/page.html", 40004),
    "missing": ("{origin}/missing.jpg", 40004),
    "scan-bomb-by-url": ("{origin}/bomb.jpg", 41301),
}


def app_code(response: httpx.Response) -> int:
    code: int = response.json()["code"]
    return code


def openai_code(response: httpx.Response) -> int:
    body: dict[str, Any] = response.json()
    return int(body["error"]["code"]) if response.status_code != 200 else 0


def openai_body(image: str) -> dict[str, Any]:
    return {
        "model": "qwen3-vl-8b",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": image}},
                    {"type": "text", "text": "?"},
                ],
            }
        ],
        "max_tokens": 8,
    }


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_answers_its_code_on_both_routes(name: str, gateway) -> None:
    make, code = BOMBS[name]
    text = base64.b64encode(make()).decode()
    app = gateway.ask({"image": text, "prompt": "describe", "max_tokens": 8})
    assert app.status_code < 500 and app_code(app) == code, app.text
    openai = gateway.post("/v1/chat/completions", json=openai_body(f"data:image/png;base64,{text}"))
    assert openai.status_code < 500 and openai_code(openai) == code, openai.text


class HostileOrigin:
    """An ASGI origin answering raw redirects and fixed bodies by path (404 otherwise)."""

    def __init__(self) -> None:
        self.redirects = {"/bad-redirect": b"http:127.0.0.1/x", "/to-loopback": b"http://127.0.0.2:6379/"}
        self.files = {
            "/page.html": (b"<html></html>", b"text/html"),
            "/bomb.jpg": (bombs.jpeg_scan_bomb(2000), b"image/jpeg"),
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        status, body, headers = 404, b"not found", [(b"content-type", b"text/plain")]
        if path in self.redirects:
            status, body, headers = 302, b"", [(b"location", self.redirects[path])]
        elif path in self.files:
            body, kind = self.files[path]
            status, headers = 200, [(b"content-type", kind)]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def hostile_origin() -> Iterator[ThreadedServer]:
    with serve(HostileOrigin()) as server:
        yield server


@pytest.mark.parametrize("name", list(URLS))
def test_hostile_url_answers_its_code(name: str, make_gateway, emulator, hostile_origin) -> None:
    gateway = make_gateway(
        [emulator.url],
        image_allow_private_urls=False,
        image_url_allowlist=[f"127.0.0.1:{hostile_origin.port}"],
        image_allowed_ports=[80, 443, hostile_origin.port],
    )
    template, code = URLS[name]
    url = template.format(p=hostile_origin.port, origin=hostile_origin.url)
    response = gateway.ask({"image": url, "prompt": "describe", "max_tokens": 8})
    assert response.status_code < 500 and app_code(response) == code, response.text[:300]


def test_after_the_corpus_an_ordinary_photo_still_answers(gateway, emulator) -> None:
    for make, _ in BOMBS.values():
        gateway.ask({"image": base64.b64encode(make()).decode(), "prompt": "x", "max_tokens": 4})
    before = emulator_stats(emulator)
    response = gateway.ask({"image": base64.b64encode(photo_jpeg()).decode(), "prompt": "x", "max_tokens": 8})
    assert response.status_code == 200 and app_code(response) == 0
    assert emulator_stats(emulator) != before


def _decode_workers() -> set[int]:
    """Decode worker processes that are children of this test process (the gateway runs in it)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat[stat.rfind(")") + 2 :].split()[1])
        if parent == os.getpid() and b"gateway.images.worker" in cmdline:
            found.add(int(entry.name))
    return found


def test_gateway_shutdown_leaves_no_decode_worker(make_gateway, emulator) -> None:
    gateway = make_gateway([emulator.url])
    before = _decode_workers()
    response = gateway.ask({"image": base64.b64encode(photo_jpeg(3000, 2000)).decode(), "prompt": "x"})
    assert response.status_code == 200
    started = _decode_workers() - before
    assert started  # the photo was over the pixel budget: decoded in a worker process
    gateway.server.stop()
    assert not (_decode_workers() & started)
