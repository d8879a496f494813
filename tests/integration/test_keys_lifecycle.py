"""Key lifecycle end to end: ``vlgw keys`` as an operator runs it, a running gateway as apps see it.

Expiry, rotation with a grace period, last-used times, per-key preset allow-lists, forged and
legacy keys, on the embedded store and on a real redis-server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.auth import Signer

GRACE = 2.0


def vlgw(env: dict[str, str], *argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout.strip()


def listing(env: dict[str, str]) -> dict[str, list[dict[str, object]]]:
    rows = [json.loads(line) for line in vlgw(env, "keys", "list", "--json").splitlines()]
    by_name: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_name.setdefault(str(row["name"]), []).append(row)
    return by_name


def presets(gw, key: str) -> httpx.Response:
    return gw.client.get("/v1/presets", headers={"authorization": f"Bearer {key}"})


@pytest.fixture(params=["embedded", "redis"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    env = {"GATEWAY_DATA_DIR": str(tmp_path)}
    if request.param == "redis":
        env["GATEWAY_REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


@pytest.mark.slow
def test_expiry_rotation_last_used_and_allow_lists(store_env, emulator, make_gateway) -> None:
    gw = make_gateway(
        [emulator.url],
        auth_disabled=False,
        key_cache_seconds=0.2,
        redis_url=store_env.get("GATEWAY_REDIS_URL"),
    )
    app = vlgw(store_env, "keys", "create", "--name", "app", "--presets", "ocr,receipt")
    trial = vlgw(store_env, "keys", "create", "--name", "trial", "--expires", f"{GRACE}s")

    listed = presets(gw, app)
    assert listed.status_code == 200 and {p["name"] for p in listed.json()["presets"]} == {"ocr", "receipt"}
    assert presets(gw, trial).status_code == 200

    new = vlgw(store_env, "keys", "rotate", "app", "--grace", f"{GRACE}s")
    assert presets(gw, app).status_code == 200 and presets(gw, new).status_code == 200  # both in the grace
    assert {p["name"] for p in presets(gw, new).json()["presets"]} == {"ocr", "receipt"}  # allow-list carried

    time.sleep(GRACE + 0.3)
    old = presets(gw, app)
    assert old.status_code == 401 and old.json()["code"] == 40101 and "rotation" in old.json()["message"]
    expired = presets(gw, trial)
    assert expired.status_code == 401 and "expired at" in expired.json()["message"]
    assert presets(gw, new).status_code == 200

    forged = presets(gw, Signer(b"an attacker's own secret 0123").generate())
    assert forged.status_code == 401 and forged.json()["code"] == 40101

    gw.client.close()
    gw.server.stop()  # writes the batched last-used times
    rows = listing(store_env)
    assert [r["status"] for r in rows["app"]] == ["rotated", "active"]
    assert [r["status"] for r in rows["trial"]] == ["expired"]
    assert all(r["last_used_at"] is not None for r in rows["app"] + rows["trial"])


def test_a_key_from_before_signed_keys_works_until_legacy_is_turned_off(
    emulator, make_gateway, tmp_path
) -> None:
    """A CRC32 key as the first release made it, stored as the first release stored it."""
    import asyncio

    from gateway.auth import KeyRecord, SqliteKeyStore
    from gateway.auth.keys import generate_legacy_key, hash_key, key_id
    from gateway.store import EmbeddedDB

    legacy = generate_legacy_key()

    async def store_it() -> None:
        db = EmbeddedDB.in_dir(tmp_path)
        await SqliteKeyStore(db).add(
            KeyRecord(
                name="old-app",
                key_id=key_id(legacy),
                key_hash=hash_key(legacy),
                created_at=1.7e9,
                signed=False,
            )
        )
        db.close()

    asyncio.run(store_it())
    accepting = make_gateway([emulator.url], auth_disabled=False)
    assert presets(accepting, legacy).status_code == 200
    refusing = make_gateway([emulator.url], auth_disabled=False, key_accept_legacy=False)
    refused = presets(refusing, legacy)
    assert refused.status_code == 401 and "old format" in refused.json()["message"]
