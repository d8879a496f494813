"""GATEWAY_<NAME>_FILE: the gateway reads its secrets from files (gateway/settings.py, SecretFilesSource)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import SECRET_FIELDS, Settings, SettingsError, load_settings


def test_a_secret_file_gives_the_value_without_its_trailing_newline(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "key").write_text("s3cret-value\n")
    monkeypatch.setenv("GATEWAY_UPSTREAM_API_KEY_FILE", str(tmp_path / "key"))
    settings = load_settings(_env_file=None)
    assert settings.upstream_api_key is not None
    assert settings.upstream_api_key.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(settings) and "s3cret-value" not in str(settings.upstream_api_key)


def test_only_one_newline_is_dropped(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "token").write_text("a b\n\n")
    monkeypatch.setenv("GATEWAY_METRICS_TOKEN_FILE", str(tmp_path / "token"))
    token = load_settings(_env_file=None).metrics_token
    assert token is not None and token.get_secret_value() == "a b\n"


def test_the_variable_and_its_file_together_are_refused(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "url").write_text("redis://gateway:pw@redis:6379/0")
    monkeypatch.setenv("GATEWAY_REDIS_URL_FILE", str(tmp_path / "url"))
    monkeypatch.setenv("GATEWAY_REDIS_URL", "redis://other:6379/0")
    with pytest.raises(SettingsError, match="GATEWAY_REDIS_URL or GATEWAY_REDIS_URL_FILE, not both"):
        load_settings(_env_file=None)


def test_arguments_still_win_over_files(tmp_path: Path, monkeypatch) -> None:
    """Tests and tools that build Settings(...) directly are not affected by a stray variable."""
    (tmp_path / "url").write_text("redis://from-file:6379/0")
    monkeypatch.setenv("GATEWAY_REDIS_URL_FILE", str(tmp_path / "url"))
    assert (
        Settings(_env_file=None, redis_url="redis://argument:6379/0").redis_url == "redis://argument:6379/0"
    )  # type: ignore[call-arg]


def test_only_secret_fields_have_files() -> None:
    # GATEWAY_UPSTREAM_URLS_FILE is a setting of its own (a list re-read at runtime), not a secret file.
    assert "upstream_urls" not in SECRET_FIELDS
    assert {"upstream_api_key", "metrics_token", "redis_url", "key_secret"} == set(SECRET_FIELDS)


def test_vlgw_serve_names_an_unreadable_secret_file_and_stops(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve"],
        env={"PATH": "/usr/bin:/bin", "GATEWAY_METRICS_TOKEN_FILE": str(missing), "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert f"GATEWAY_METRICS_TOKEN_FILE: cannot read {missing}" in result.stderr


def test_the_key_signing_secret_comes_from_its_file(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "key_secret").write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setenv("GATEWAY_KEY_SECRET_FILE", str(tmp_path / "key_secret"))
    secret = load_settings(_env_file=None).key_secret
    assert secret is not None and secret.get_secret_value() == "0123456789abcdef0123456789abcdef"


def test_an_empty_file_variable_is_ignored(monkeypatch) -> None:
    """How a job that does not mount a secret switches its _FILE setting off (backup-cronjob.yaml)."""
    monkeypatch.setenv("GATEWAY_UPSTREAM_API_KEY_FILE", "")
    assert load_settings(_env_file=None).upstream_api_key is None
