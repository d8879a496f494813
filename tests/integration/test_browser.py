"""A real page in headless Chromium calls the gateway from another origin (CORS), with the client
guide's own browser modules (docs/clients/examples/vlgw.mjs and browser.mjs): a ≥ 2 MB phone photo
with EXIF orientation is turned upright, downscaled and sent; the answer, a stream and an error's
``code`` are all readable cross-origin; an origin that is not allowed is refused by the browser."""

from __future__ import annotations

import io
import json
import queue
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.images import photo_jpeg
from tests.integration.test_devex import create_key
from tests.servers import answer, read_request_body, run_lifespan, serve

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "clients" / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian `chromium` is not installed (install-test-deps.sh)"),
]

PAGE = b"""<!doctype html><meta charset="utf-8"><title>vlgw browser test</title>
<script type="module">
import { ask, askStreaming } from "./vlgw.mjs";
import { photoDataUri } from "./browser.mjs";
const params = new URLSearchParams(location.search);
const gateway = params.get("gw"), key = params.get("key");
const results = {};
try {
  const photo = await (await fetch("/photo.jpg")).blob();
  results.photoBytes = photo.size;
  const image = await photoDataUri(photo);
  results.sentChars = image.length;
  results.answer = await ask(gateway, key, image, "\xe8\xbf\x99\xe6\x98\xaf\xe4\xbb\x80\xe4\xb9\x88?");
  let deltas = 0;
  results.stream = await askStreaming(gateway, key, image, "describe", () => deltas++);
  results.deltas = deltas;
  results.wrongKey = await ask(gateway, "vlgw_wrong_key", image, "x");
} catch (err) {
  results.error = String(err);
}
await fetch("/result", { method: "POST", body: JSON.stringify(results) });
</script>"""


class PageOrigin:
    """The web app's own origin: serves the page, the guide's modules and the photo; collects results."""

    def __init__(self, photo: bytes) -> None:
        self.photo = photo
        self.results: queue.Queue[dict[str, Any]] = queue.Queue()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        path = scope["path"]
        body = await read_request_body(receive)
        if path == "/result":
            self.results.put(json.loads(body))
            content, kind = b"{}", b"application/json"
        elif path == "/photo.jpg":
            content, kind = self.photo, b"image/jpeg"
        elif path in ("/vlgw.mjs", "/browser.mjs"):
            content, kind = (EXAMPLES / path[1:]).read_bytes(), b"text/javascript"
        else:
            content, kind = PAGE, b"text/html; charset=utf-8"
        await answer(send, 200, [(b"content-type", kind)], content)


def phone_photo() -> bytes:
    """A 12 MP JPEG stored landscape with EXIF Orientation 6, as phones write portrait shots."""
    stored = Image.open(io.BytesIO(photo_jpeg(4032, 3024, quality=95, seed=21)))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


def run_page(page_url: str, tmp_path: Path, origin: PageOrigin) -> dict[str, Any]:
    assert CHROMIUM is not None
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]  # fmt: skip
    browser = subprocess.Popen(
        [CHROMIUM, *flags, page_url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        return origin.results.get(timeout=90)
    finally:
        browser.kill()
        browser.wait(timeout=10)


def test_a_browser_app_on_an_allowed_origin(make_gateway, emulator, tmp_path: Path) -> None:
    photo = phone_photo()
    assert len(photo) >= 2_000_000
    origin = PageOrigin(photo)
    with serve(origin) as page:
        gw = make_gateway([emulator.url], auth_disabled=False, cors_origins=[page.url])
        key = create_key(tmp_path, "browser-app")
        results = run_page(f"{page.url}/?gw={gw.url}&key={key}", tmp_path, origin)
    assert "error" not in results, results
    assert results["photoBytes"] == len(photo)
    assert results["sentChars"] < len(photo)  # downscaled before upload
    answer, stream, wrong = results["answer"], results["stream"], results["wrongKey"]
    assert answer["code"] == 0 and answer["request_id"], answer
    width, height = map(int, re.search(r"(\d+)x(\d+)", answer["text"]).groups())
    assert height > width, answer["text"]  # upright: the EXIF orientation was applied
    assert stream["code"] == 0 and results["deltas"] > 1, stream
    assert wrong["code"] == 40101  # the error body is readable cross-origin


def test_an_origin_that_is_not_allowed_is_refused_by_the_browser(
    make_gateway, emulator, tmp_path: Path
) -> None:
    origin = PageOrigin(photo_jpeg(seed=22))
    with serve(origin) as page:
        gw = make_gateway([emulator.url], auth_disabled=False, cors_origins=["https://app.example"])
        key = create_key(tmp_path, "browser-app")
        results = run_page(f"{page.url}/?gw={gw.url}&key={key}", tmp_path, origin)
    assert results["answer"] == {"code": -1, "text": "暂时没看清楚,换个角度再试试?", "error": "TypeError"}
    assert results["stream"]["code"] == -1


def test_preflight_answers(make_gateway, emulator) -> None:
    gw = make_gateway([emulator.url], cors_origins=["https://app.example"])
    ok = gw.client.options(
        "/v1/qwen-vl",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"},
    )  # fmt: skip
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in ok.headers["access-control-allow-headers"]
    assert "x-request-id" in ok.headers  # preflights are requests like any other
    refused = gw.client.options(
        "/v1/qwen-vl", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    plain = gw.client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in plain.headers  # only /v1/* is for browsers


def test_cors_is_off_by_default(make_gateway, emulator) -> None:
    gw = make_gateway([emulator.url])
    response = gw.client.options(
        "/v1/qwen-vl", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in response.headers
