"""Reading and validating a presets file; every error names the file, the preset and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import yaml

from gateway.presets.model import Preset

BUNDLED_PRESETS = Path(__file__).with_name("presets.yaml")


class PresetFileError(Exception):
    """The presets file cannot be used; the message says where and why."""


def parse_presets(text: str, source: str = "<presets>") -> dict[str, Preset]:
    """Presets by name from YAML text ``{presets: [{name: ..., version: ..., ...}, ...]}``."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PresetFileError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("presets"), list):
        raise PresetFileError(f"{source}: expected a mapping with a `presets` list")
    presets: dict[str, Preset] = {}
    for index, entry in enumerate(document["presets"], start=1):
        label = _label(entry, index)
        if not isinstance(entry, dict):
            raise PresetFileError(f"{source}: {label}: expected a mapping of fields")
        try:
            preset = msgspec.convert(entry, Preset)
        except msgspec.ValidationError as exc:
            raise PresetFileError(f"{source}: {label}: {_field_message(exc)}") from None
        if preset.name in presets:
            raise PresetFileError(f"{source}: {label}: the name {preset.name!r} is used twice")
        presets[preset.name] = preset
    if not presets:
        raise PresetFileError(f"{source}: no presets defined")
    return presets


def load_presets(path: Path) -> dict[str, Preset]:
    """Presets by name from the file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetFileError(f"{path}: cannot read: {exc}") from None
    return parse_presets(text, str(path))


def _label(entry: Any, index: int) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"preset {name!r} (entry {index})" if isinstance(name, str) else f"preset entry {index}"


def _field_message(exc: msgspec.ValidationError) -> str:
    # msgspec says "Expected `float` <= 2.0 - at `$.temperature`"; say "field `temperature`: ...".
    message = str(exc)
    head, sep, where = message.rpartition(" - at `$.")
    if sep:
        return f"field `{where.rstrip('`')}`: {head}"
    return message
