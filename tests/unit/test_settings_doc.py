"""docs/settings.md names every setting, and settings errors name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError, load_settings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    variable = f"GATEWAY_{name.upper()}"
    grouped = re.search(r"`GATEWAY_DEFAULT_RPM` / `_TPM` / `_CONCURRENCY`", DOC)
    if name in ("default_tpm", "default_concurrency") and grouped:
        return
    assert f"`{variable}`" in DOC


def test_invalid_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None, port=70000)
    assert "GATEWAY_PORT" in str(info.value)


def test_csv_lists_parse() -> None:
    settings = Settings(
        _env_file=None, upstream_urls="http://a:8000/, http://b:8000", image_allowed_ports="80,8443"
    )
    assert settings.upstream_urls == ["http://a:8000", "http://b:8000"]
    assert settings.image_allowed_ports == [80, 8443]
