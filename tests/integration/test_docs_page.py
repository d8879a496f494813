"""``GET /docs`` renders in a real headless Chromium, offline: operations, fields, error codes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_devex import devex_gateway

__all__ = ["devex_gateway"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian `chromium` is not installed (scripts/install-test-deps.sh installs it)"
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]  # fmt: skip
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90)


def test_docs_page_is_self_contained(devex_gateway) -> None:
    gw = devex_gateway()
    page = gw.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    # Nothing fetched from elsewhere: no external script, style, font or image.
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", html)
    for expected in ("/v1/qwen-vl", "/v1/feedback", "/v1/presets", "/v1/usage", "40009", "prompt", "verdict"):
        assert expected in html, expected
    schema = gw.client.get("/schema/openapi.json").json()
    feedback_body = schema["paths"]["/v1/feedback"]["post"]["requestBody"]["content"]["application/json"]
    assert set(feedback_body["schema"]["required"]) == {"request_id", "verdict"}


@needs_chromium
@pytest.mark.slow
def test_docs_page_renders_in_headless_chromium(devex_gateway, tmp_path: Path) -> None:
    gw = devex_gateway()
    dom = chromium(tmp_path, "--dump-dom", f"{gw.url}/docs")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="qwenVl"' in dom.stdout and "/v1/qwen-vl" in dom.stdout
    assert "Request body (JSON)" in dom.stdout and "40009" in dom.stdout
    shot = tmp_path / "docs.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", f"{gw.url}/docs")
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
    print(f"screenshot: {shot}")
