"""Presets: the bundled ones render, validation names the preset and field, hot reload keeps serving."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import structlog

from gateway import errors
from gateway.presets import BUNDLED_PRESETS, PresetFileError, PresetRegistry, load_presets, parse_presets
from gateway.settings import Settings

SHIPPED = {"identify_object", "describe", "ocr", "ui_screenshot", "receipt", "describe_video", "moderate"}

GOOD = """
presets:
  - name: tag
    version: "1"
    description: Tag the image.
    template: "Tags for: {prompt}"
"""
EDITED = GOOD.replace('version: "1"', 'version: "2"').replace("Tags for", "Labels for")


def settings(path: Path | None = None, **overrides: object) -> Settings:
    return Settings(_env_file=None, presets_file=path, **overrides)  # type: ignore[call-arg]


def test_every_shipped_preset_loads_and_renders() -> None:
    presets = load_presets(BUNDLED_PRESETS)
    assert set(presets) == SHIPPED
    for preset in presets.values():
        text = preset.render(None)
        assert text and "{prompt}" not in text
        assert preset.render("用英文回答").endswith("用英文回答")
        assert preset.description and preset.version
        assert preset.cache_tag == f"{preset.name}@{preset.version}"


def test_identify_object_is_the_guides_prompt() -> None:
    preset = load_presets(BUNDLED_PRESETS)["identify_object"]
    text = preset.render(None)
    assert "先说出物品名称,再用一句话描述其常见用途" in text and "不要使用Markdown格式" in text
    assert preset.precheck and preset.output == "text"


def test_receipt_asks_for_the_json_fields() -> None:
    preset = load_presets(BUNDLED_PRESETS)["receipt"]
    text = preset.render(None)
    assert preset.output == "json"
    for field in ("merchant", "date", "items", "total", "currency"):
        assert f'"{field}"' in text


def test_a_required_prompt_is_refused_with_40001_naming_prompt() -> None:
    preset = parse_presets(GOOD)["tag"]
    with pytest.raises(errors.InvalidBody) as caught:
        preset.render("  ")
    assert caught.value.param == "prompt" and caught.value.code == 40001
    assert preset.render("a cat") == "Tags for: a cat"


def test_literal_braces_in_templates_are_kept() -> None:
    text = GOOD.replace("Tags for: {prompt}", 'JSON {\\"a\\": 1} {prompt}')
    assert parse_presets(text)["tag"].render("x") == 'JSON {"a": 1} x'


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            GOOD.replace("    template:", "    temperature: 3\n    template:"),
            "preset 'tag' (entry 1): field `temperature`",
        ),
        (GOOD.replace('version: "1"', "version: 1"), "field `version`"),
        (GOOD.replace("    template:", "    colour: red\n    template:"), "colour"),
        (GOOD.replace("{prompt}", ""), "must contain {prompt}"),
        (
            GOOD.replace("    template:", "    max_tokens: 500\n    max_tokens_cap: 100\n    template:"),
            "above",
        ),
        (GOOD.replace("    template:", "    output: xml\n    template:"), "field `output`"),
        (GOOD.replace("name: tag", "name: Bad-Name"), "field `name`"),
        (GOOD + GOOD.replace("presets:\n", ""), "used twice"),
        ("presets: [", "not valid YAML"),
        ("something: else", "`presets` list"),
    ],
)
def test_validation_errors_name_the_preset_and_field(yaml_text: str, message: str) -> None:
    with pytest.raises(PresetFileError) as caught:
        parse_presets(yaml_text, "p.yaml")
    assert message in str(caught.value) and str(caught.value).startswith("p.yaml: ")


def test_unknown_preset_is_40008_listing_the_known_names() -> None:
    registry = PresetRegistry(settings())
    with pytest.raises(errors.UnknownPreset) as caught:
        registry.get("nope")
    assert caught.value.code == 40008 and caught.value.param == "preset"
    assert "identify_object" in caught.value.message
    assert [p.name for p in registry.all()] == sorted(SHIPPED)


def test_a_broken_file_at_start_up_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "presets.yaml"
    path.write_text("presets: []")
    with pytest.raises(PresetFileError, match="no presets"):
        PresetRegistry(settings(path))


def _touch_newer(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a distinct mtime even on coarse clocks


async def test_hot_reload_picks_up_an_edit_and_rejects_a_broken_one(tmp_path: Path) -> None:
    path = tmp_path / "presets.yaml"
    path.write_text(GOOD)
    registry = PresetRegistry(settings(path, presets_reload_seconds=0.05))
    await registry.start()
    try:
        assert registry.get("tag").version == "1"
        _touch_newer(path, EDITED)
        await _until(lambda: registry.get("tag").version == "2")
        assert registry.get("tag").render("x") == "Labels for: x"

        with structlog.testing.capture_logs() as logs:
            _touch_newer(path, EDITED.replace("    template:", "    top_p: 0\n    template:"))
            await _until(lambda: registry.last_error is not None)
        assert "field `top_p`" in (registry.last_error or "")
        assert any(entry["event"] == "presets_reload_failed" for entry in logs)
        assert registry.get("tag").version == "2"  # the old presets keep serving

        _touch_newer(path, GOOD)
        await _until(lambda: registry.get("tag").version == "1")
        assert registry.last_error is None
    finally:
        await registry.aclose()


def test_maybe_reload_is_a_cheap_no_op_without_a_change(tmp_path: Path) -> None:
    path = tmp_path / "presets.yaml"
    path.write_text(GOOD)
    registry = PresetRegistry(settings(path))
    assert registry.maybe_reload() is False
    _touch_newer(path, EDITED)
    assert registry.maybe_reload() is True and registry.get("tag").version == "2"
    path.unlink()  # a vanished file keeps the presets in use
    assert registry.maybe_reload() is False and registry.get("tag").version == "2"


async def _until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)
