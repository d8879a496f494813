"""Server-side prompt presets (docs/presets.md).

model.py     Preset (msgspec Struct): fields, validation, ``render(prompt)``, ``cache_tag``
loader.py    YAML -> presets, errors naming the file, the preset and the field
registry.py  PresetRegistry: ``get``/``all``, hot reload on file change, broken edits rejected
presets.yaml the bundled presets (identify_object, describe, ocr, ui_screenshot, receipt)
"""

from gateway.presets.loader import BUNDLED_PRESETS, PresetFileError, load_presets, parse_presets
from gateway.presets.model import Preset, PresetInfo
from gateway.presets.registry import PresetRegistry

__all__ = [
    "BUNDLED_PRESETS",
    "Preset",
    "PresetFileError",
    "PresetInfo",
    "PresetRegistry",
    "load_presets",
    "parse_presets",
]
