"""Every shipped preset end to end against the emulator, and hot reload through a running gateway."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from pathlib import Path

import pytest
from PIL import ImageFilter

from gateway.presets import BUNDLED_PRESETS, load_presets
from tests.images import bare_b64, photo_jpeg
from tests.integration.conftest import emulator_requests, emulator_stats

PHOTO = bare_b64(photo_jpeg(640, 480, seed=21))
SHIPPED = list(load_presets(BUNDLED_PRESETS).values())


@pytest.mark.parametrize("preset", SHIPPED, ids=lambda p: p.name)
def test_shipped_preset_end_to_end(gateway, emulator, preset) -> None:
    response = gateway.ask({"image": PHOTO, "preset": preset.name, "prompt": "（测试）", "precheck": False})
    assert response.status_code == 200, response.text
    assert response.json()["code"] == 0 and response.json()["text"]
    [sent] = emulator_requests(emulator)
    body = sent["body"]
    messages = body["messages"]
    if preset.system:
        assert messages[0] == {"role": "system", "content": preset.system}
    user = messages[-1]["content"]
    assert user[-1]["text"] == preset.render("（测试）")
    assert body["max_tokens"] == (preset.max_tokens or gateway.settings.default_max_tokens)
    if preset.temperature is not None:
        assert body["temperature"] == preset.temperature


def _precheck_bench():
    """bench/precheck.py, whose receipt renders (a real font, paper ~245 or clipped) the test sends."""
    path = Path(__file__).resolve().parents[2] / "bench" / "precheck.py"
    spec = importlib.util.spec_from_file_location("bench_precheck", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_precheck"] = module
    spec.loader.exec_module(module)
    return module


def test_receipt_preset_prechecks_a_photographed_receipt(gateway, emulator) -> None:
    """`receipt` turns the pre-check on: clean receipts are answered (the old mean-luminance check
    refused them as too bright), a blurred one is refused with 40009 before any upstream call."""
    bench = _precheck_bench()
    for seed in (1, 2):  # paper filling the frame at ~245, and paper the phone clipped to 255
        receipt = bench.receipt(seed)
        response = gateway.ask({"image": bare_b64(bench.encode(receipt)), "preset": "receipt"})
        assert response.status_code == 200 and response.json()["code"] == 0, response.text
    blurred = receipt.filter(ImageFilter.GaussianBlur(max(receipt.size) * 0.006))
    before = emulator_stats(emulator)["chat_requests"]
    refused = gateway.ask({"image": bare_b64(bench.encode(blurred)), "preset": "receipt"})
    assert refused.status_code == 400 and refused.json()["code"] == 40009, refused.text
    assert refused.json()["reason"] == "blurry"
    assert emulator_stats(emulator)["chat_requests"] == before


def test_preset_caps_max_tokens(gateway) -> None:
    capped = next(p for p in SHIPPED if p.max_tokens_cap)
    response = gateway.ask({"image": PHOTO, "preset": capped.name, "max_tokens": capped.max_tokens_cap + 1})
    assert response.json()["code"] == 40007


def test_hot_reload_and_broken_file(emulator, make_gateway, tmp_path) -> None:
    presets_file = tmp_path / "presets.yaml"
    shutil.copy(BUNDLED_PRESETS, presets_file)
    gw = make_gateway([emulator.url], presets_file=presets_file, presets_reload_seconds=0.2)

    def user_text() -> str:
        assert gw.ask({"image": PHOTO, "preset": "describe"}).status_code == 200
        return str(emulator_requests(emulator)[0]["body"]["messages"][-1]["content"][-1]["text"])

    assert user_text().startswith("请描述这张图片的内容")
    old, new = "请描述这张图片的内容。{prompt}", "Describe it in English. {prompt}"
    text = presets_file.read_text().replace(old, new)
    presets_file.write_text(text.replace('version: "1"', 'version: "2"', 2))
    deadline = time.monotonic() + 5
    while not user_text().startswith("Describe it in English") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert user_text().startswith("Describe it in English")
    listed = {p["name"]: p for p in gw.client.get("/v1/presets").json()["presets"]}
    assert listed["describe"]["version"] == "2"
    # A broken edit is refused; the presets loaded before keep serving.
    presets_file.write_text("presets:\n  - name: [not, a, name]\n")
    time.sleep(0.8)
    assert user_text().startswith("Describe it in English")
    assert "ocr" in {p["name"] for p in gw.client.get("/v1/presets").json()["presets"]}
