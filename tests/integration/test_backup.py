"""``vlgw backup`` / ``vlgw restore`` as an operator runs them, across both stores.

Round trip Redis -> file -> embedded store -> file -> Redis on a real redis-server, with the
real ``vlgw`` command as a subprocess. The data comes from real traffic (keys made with
``vlgw keys``, answered requests and feedback through a running gateway and the emulator) plus
older days written through the stores' own API (usage and feedback dated before today).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.auth import build_key_manager
from gateway.devex.model import FeedbackEntry, RequestRecord
from gateway.devex.redis_store import RedisDevexStore
from gateway.settings import Settings
from gateway.store import EmbeddedDB
from tests.images import data_uri, photo_jpeg
from tests.integration.conftest import create_key
from tests.servers import RedisServer
from tests.unit.store.helpers import resilient

DAY = 86_400.0


def vlgw(env: dict[str, str], *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=check, timeout=60,
    )  # fmt: skip


def body(path: Path) -> list[str]:
    """The backup without its header (which names the store and the time)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "vlgw-backup" and header["version"] == 1 and header["gateway_version"]
    return lines[1:]


async def older_history(url: str) -> None:
    """Usage and feedback from before today (as months of traffic would leave)."""
    client = resilient(url, timeout=2)
    store = RedisDevexStore(client)
    past = time.time() - 30 * DAY
    await store.add_usage({("app", "2026-10-30"): {"requests": 7, "prompt_tokens": 900, "err:42901": 2}})
    for i, (verdict, comment) in enumerate([("bad", "识别有误"), ("good", None), ("bad", "not a fern")]):
        request = RequestRecord(
            request_id=f"old-{i}", key_name="app", route="/v1/qwen-vl", prompt="这是什么植物?",
            answer="绿萝。", model="qwen3-vl", image_sha256=["ab" * 32], created=past + i,
        )  # fmt: skip
        await store.add_feedback(FeedbackEntry(
            id="", created=past + i + 0.5, key_name="app", request_id=f"old-{i}", verdict=verdict,
            comment=comment, request=request,
        ))  # fmt: skip
    await client.aclose()


def authenticates(settings: Settings, key: str) -> str:
    async def check() -> str:
        redis = resilient(settings.redis_url, timeout=2) if settings.redis_url else None
        db = None if redis else EmbeddedDB.in_dir(settings.data_dir)
        manager = build_key_manager(settings, redis, db)
        try:
            return (await manager.authenticate(key)).name
        finally:
            await manager.aclose()
            if redis:
                await redis.aclose()
            if db:
                db.close()

    return asyncio.run(check())


@pytest.mark.slow
def test_round_trip_redis_file_embedded_file_redis(redis_url, emulator, make_gateway, tmp_path: Path) -> None:
    redis_env = {"GATEWAY_REDIS_URL": redis_url, "GATEWAY_DATA_DIR": str(tmp_path / "unused")}
    embedded_env = {"GATEWAY_DATA_DIR": str(tmp_path / "embedded")}

    # Keys in every state: limited with allow-lists and an expiry, rotated (old one in grace), revoked.
    app = create_key(
        redis_env, "app", "--rpm", "60", "--presets", "identify_object,ocr", "--models", "qwen3-vl"
    )
    create_key(redis_env, "trial", "--expires", "30d", "--tpm", "5000")
    create_key(redis_env, "gone")
    vlgw(redis_env, "keys", "revoke", "gone")
    rotated = vlgw(redis_env, "keys", "rotate", "app", "--grace", "24h").stdout.strip()

    # Real traffic through the gateway: answered requests (usage), feedback, last-used times.
    gw = make_gateway([emulator.url], auth_disabled=False, redis_url=redis_url)
    headers = {"authorization": f"Bearer {rotated}"}
    answer = gw.ask({"image": data_uri(photo_jpeg()), "preset": "identify_object"}, headers=headers)
    assert answer.status_code == 200, answer.text
    feedback = {
        "request_id": answer.json()["request_id"],
        "verdict": "bad",
        "comment": "识别有误",
        "expected": "吊兰",
    }
    assert gw.post("/v1/feedback", json=feedback, headers=headers).json()["code"] == 0
    old_key = {"authorization": f"Bearer {app}"}  # still in its grace
    assert gw.ask({"image": data_uri(photo_jpeg()), "preset": "ocr"}, headers=old_key).status_code == 200
    gw.client.close()
    gw.server.stop()  # flushes usage and last-used times
    asyncio.run(older_history(redis_url))

    first, second, third = tmp_path / "1.jsonl", tmp_path / "2.jsonl", tmp_path / "3.jsonl"
    vlgw(redis_env, "backup", "--out", str(first))
    assert first.stat().st_mode & 0o777 == 0o600  # it holds the signing secret
    kinds = [json.loads(line)["kind"] for line in body(first)]
    assert kinds.count("key") == 4 and kinds.count("feedback") == 4 and kinds.count("usage") >= 2
    assert kinds[0] == "secret" and kinds[-1] == "end"
    assert app not in first.read_text() and rotated not in first.read_text()

    # -> embedded store (twice: restore is idempotent) -> file
    for _ in range(2):
        result = vlgw(embedded_env, "restore", str(first))
        assert "restored 4 keys" in result.stderr
    vlgw(embedded_env, "backup", "--out", str(second))
    assert body(second) == body(first)
    assert json.loads(second.read_text().splitlines()[0])["store"] == "embedded"

    # Keys work in the new store: the rotated key, and the old one during its grace.
    embedded = Settings(_env_file=None, data_dir=tmp_path / "embedded")  # type: ignore[call-arg]
    assert authenticates(embedded, rotated) == "app" and authenticates(embedded, app) == "app"

    # -> a fresh Redis -> file
    fresh = RedisServer().start()
    try:
        fresh_env = {"GATEWAY_REDIS_URL": fresh.url, "GATEWAY_DATA_DIR": str(tmp_path / "unused")}
        vlgw(fresh_env, "restore", str(second))
        vlgw(fresh_env, "restore", str(second))
        vlgw(fresh_env, "backup", "--out", str(third))
        assert body(third) == body(first)
        fresh_settings = Settings(_env_file=None, redis_url=fresh.url)  # type: ignore[call-arg]
        assert authenticates(fresh_settings, rotated) == "app"
        # the restored feedback is found by time, as `vlgw feedback export` asks for it
        export = tmp_path / "feedback.jsonl"
        vlgw(fresh_env, "feedback", "export", "--since", "2020-01-01", "--out", str(export))
        assert len(export.read_text().splitlines()) == 4
    finally:
        fresh.stop()


def test_restore_refuses_unknown_versions_and_cut_files_without_writing(tmp_path: Path) -> None:
    source = {"GATEWAY_DATA_DIR": str(tmp_path / "source")}
    target = {"GATEWAY_DATA_DIR": str(tmp_path / "target")}
    create_key(source, "app")
    good = tmp_path / "good.jsonl"
    vlgw(source, "backup", "--out", str(good))
    lines = good.read_text().splitlines()

    future = tmp_path / "future.jsonl"
    future.write_text("\n".join([json.dumps({**json.loads(lines[0]), "version": 2}), *lines[1:]]) + "\n")
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-1]) + "\n")
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"hello": "world"}\n')
    for path, complaint in [
        (future, "unknown backup format version 2"),
        (cut, "no end marker"),
        (foreign, "not a vlgw backup"),
        (tmp_path / "missing.jsonl", "cannot read"),
    ]:
        result = vlgw(target, "restore", str(path), check=False)
        assert result.returncode == 1 and complaint in result.stderr, result.stderr
    listing = vlgw(target, "keys", "list", "--json").stdout
    assert listing == ""  # nothing was written


def test_restore_refuses_a_store_signed_with_another_secret(tmp_path: Path) -> None:
    source = {"GATEWAY_DATA_DIR": str(tmp_path / "source")}
    target = {"GATEWAY_DATA_DIR": str(tmp_path / "target")}
    create_key(source, "app")
    create_key(target, "other")  # the target made its own secret
    backup = tmp_path / "b.jsonl"
    vlgw(source, "backup", "--out", str(backup))
    result = vlgw(target, "restore", str(backup), check=False)
    assert result.returncode == 1 and "different key-signing secret" in result.stderr
