"""``vlgw keys create|list|revoke`` against the embedded file and against Redis."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from pathlib import Path

import pytest

from gateway.auth import KeyManager, build_key_manager
from gateway.cli import keys as keys_cli
from gateway.settings import Settings
from gateway.store import EmbeddedDB


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="vlgw")
    keys_cli.add_arguments(root.add_subparsers(dest="command"))
    return root


def vlgw(settings: Settings, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = keys_cli.run(parser().parse_args(list(argv)), settings, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(params=["embedded", "redis"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return Settings(data_dir=tmp_path, redis_url=redis_url)


def test_create_prints_the_key_once_and_list_never_does(settings: Settings) -> None:
    code, out, err = vlgw(settings, "keys", "create", "--name", "mobile", "--rpm", "60", "--tpm", "9000",
                          "--concurrency", "3", "--preset", "receipt", "--preset", "ocr")  # fmt: skip
    assert code == 0
    plaintext = out.strip()
    assert plaintext.startswith("vlgw_") and "\n" not in plaintext
    assert plaintext not in err and "not shown again" in err

    code, out, _ = vlgw(settings, "keys", "list")
    assert code == 0 and plaintext not in out and plaintext[:33] not in out
    assert "mobile" in out and plaintext[:11] in out and "receipt,ocr" in out and "active" in out

    code, out, _ = vlgw(settings, "keys", "list", "--json")
    row = json.loads(out)
    assert row["rpm"] == 60 and row["tpm"] == 9000 and row["concurrency"] == 3 and row["revoked_at"] is None
    assert plaintext not in out and "key_hash" not in row


def test_the_server_side_accepts_a_cli_created_key_until_revoked(settings: Settings) -> None:
    _, out, _ = vlgw(settings, "keys", "create", "--name", "mobile")
    plaintext = out.strip()

    async def authenticate() -> str:
        manager = build_key_manager(settings, *_server_clients(settings))
        try:
            return (await manager.authenticate(plaintext)).name
        finally:
            await _close(manager)

    assert asyncio.run(authenticate()) == "mobile"
    assert vlgw(settings, "keys", "revoke", "mobile")[0] == 0
    assert vlgw(settings, "keys", "revoke", "mobile")[0] == 1
    with pytest.raises(Exception, match="revoked"):
        asyncio.run(authenticate())
    assert "revoked" in vlgw(settings, "keys", "list")[1]


def test_duplicate_and_bad_arguments(settings: Settings) -> None:
    assert vlgw(settings, "keys", "create", "--name", "a")[0] == 0
    code, out, err = vlgw(settings, "keys", "create", "--name", "a")
    assert code == 1 and out == "" and "already" in err
    with pytest.raises(SystemExit):
        parser().parse_args(["keys", "create", "--name", "b", "--rpm", "0"])


def test_store_unavailable_is_a_clean_error(tmp_path: Path) -> None:
    from tests.servers import free_port

    settings = Settings(data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    code, _out, err = vlgw(settings, "keys", "list")
    assert code == 2 and "unavailable" in err


def _server_clients(settings: Settings):
    from tests.unit.store.helpers import resilient

    if settings.redis_url:
        return (resilient(settings.redis_url), None)
    return (None, EmbeddedDB.in_dir(settings.data_dir))


async def _close(manager: KeyManager) -> None:
    await manager.aclose()
    store = manager.store
    if hasattr(store, "redis"):
        await store.redis.aclose()
    else:
        store.db.close()


def test_create_with_expiry_and_allow_lists_then_rotate(settings: Settings) -> None:
    code, out, err = vlgw(settings, "keys", "create", "--name", "app", "--expires", "2030-01-31",
                          "--presets", "receipt,ocr", "--models", "qwen3-vl-8b")  # fmt: skip
    assert code == 0 and "expires 2030-01-31 00:00 UTC" in err
    old = out.strip()
    row = json.loads(vlgw(settings, "keys", "list", "--json")[1])
    assert row["expires_at"] == 1896048000.0 and row["status"] == "active" and row["format"] == "signed"
    assert row["presets"] == ["receipt", "ocr"] and row["models"] == ["qwen3-vl-8b"]

    code, out, err = vlgw(settings, "keys", "rotate", "app", "--grace", "24h")
    new = out.strip()
    assert code == 0 and new.startswith("vlgw_") and new != old and new not in err and "works until" in err
    rows = [json.loads(line) for line in vlgw(settings, "keys", "list", "--json")[1].splitlines()]
    assert [(r["key_id"], r["status"]) for r in rows] == [(old[:11], "grace"), (new[:11], "active")]
    assert rows[1]["models"] == ["qwen3-vl-8b"] and rows[1]["expires_at"] is None
    table = vlgw(settings, "keys", "list")[1]
    assert "EXPIRES" in table and "grace" in table and old not in table and new not in table

    assert vlgw(settings, "keys", "rotate", "nobody")[0] == 1


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["--expires", "2001-01-01"], "not in the future"),
        (["--expires", "soon"], "not a date"),
    ],
)
def test_bad_expiry_is_refused_by_the_parser(flags: list[str], complaint: str, capsys) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["keys", "create", "--name", "b", *flags])
    assert complaint in capsys.readouterr().err


def test_bad_grace_is_refused_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["keys", "rotate", "b", "--grace", "a day"])
    assert "duration" in capsys.readouterr().err
