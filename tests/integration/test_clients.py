"""The client examples in docs/clients/examples run against a real gateway and get answers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import photo_jpeg
from tests.integration.test_devex import create_key

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "clients" / "examples"
NODE = shutil.which("node")


def _command(example: str) -> list[str]:
    if example.endswith(".mjs"):
        if NODE is None:
            pytest.skip("node (Node.js 20+) is not installed")
        return [NODE, str(EXAMPLES / example)]
    return [sys.executable, str(EXAMPLES / example)]


@pytest.mark.parametrize("example", ["client_httpx.py", "client_openai.py", "client.mjs"])
def test_example_gets_an_answer_and_a_stream(example, make_gateway, emulator, tmp_path: Path) -> None:
    gw = make_gateway([emulator.url], auth_disabled=False)
    key = create_key(tmp_path, "example-app")
    image = tmp_path / "photo.jpg"
    image.write_bytes(photo_jpeg(2400, 1800, seed=11))  # bigger than the examples upload
    result = subprocess.run(
        _command(example),
        env={"VLGW_URL": gw.url, "VLGW_KEY": key, "VLGW_IMAGE": str(image), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    answer, streamed = (next(line for line in lines if line["mode"] == mode) for mode in ("answer", "stream"))
    assert answer["code"] == 0 and answer["text"], answer
    assert streamed["code"] == 0 and streamed["text"] and streamed["chunks"] > 1, streamed


def test_wrong_key_shows_the_fallback_text(make_gateway, emulator, tmp_path: Path) -> None:
    gw = make_gateway([emulator.url], auth_disabled=False)
    image = tmp_path / "photo.jpg"
    image.write_bytes(photo_jpeg(seed=12))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "client_httpx.py")],
        env={"VLGW_URL": gw.url, "VLGW_KEY": "vlgw_wrong", "VLGW_IMAGE": str(image), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    answer = json.loads(result.stdout.splitlines()[0])
    assert (
        result.returncode == 1
        and answer["code"] == 40101
        and answer["text"] == "暂时没看清楚,换个角度再试试?"
    )
