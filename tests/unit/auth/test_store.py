"""The KeyStore protocol, one suite over the embedded (SQLite) and Redis backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth import KeyManager, KeyNameTaken, KeyRecord, Limits
from gateway.auth.keys import hash_key
from gateway.store.embedded import DB_FILENAME


def record(name: str = "app", key_hash: str = "h" * 64, **kw) -> KeyRecord:
    return KeyRecord(
        name=name, key_id="vlgw_abcdef", key_hash=key_hash, created_at=kw.pop("created_at", 1.0), **kw
    )


async def test_add_then_get_round_trips_every_field(store) -> None:
    rec = record(
        limits=Limits(rpm=60, tpm=40_000, concurrency=4),
        presets=("receipt", "ocr"),
        routes=("/v1/qwen-vl",),
        created_at=1700000000.25,
    )
    await store.add(rec)
    assert await store.get(rec.key_hash) == rec
    assert await store.get("0" * 64) is None


async def test_defaults_round_trip_as_none(store) -> None:
    rec = record()
    await store.add(rec)
    got = await store.get(rec.key_hash)
    assert got.limits == Limits() and got.presets is None and got.routes is None
    assert got.last_used_at is None and not got.revoked


async def test_empty_allow_lists_mean_nothing_allowed(store) -> None:
    rec = record(presets=(), routes=())
    await store.add(rec)
    got = await store.get(rec.key_hash)
    assert got.presets == () and got.routes == ()


async def test_active_names_are_unique(store) -> None:
    await store.add(record("app", "a" * 64))
    with pytest.raises(KeyNameTaken):
        await store.add(record("app", "b" * 64))


async def test_revoke_marks_the_record_and_frees_the_name(store) -> None:
    await store.add(record("app", "a" * 64))
    assert await store.revoke("app", 5.0) is True
    assert await store.revoke("app", 6.0) is False
    assert await store.revoke("nobody", 6.0) is False
    assert (await store.get("a" * 64)).revoked_at == 5.0
    await store.add(record("app", "b" * 64, created_at=2.0))  # rotation: same name, new key
    names = [(r.name, r.key_hash[0], r.revoked) for r in await store.list()]
    assert names == [("app", "a", True), ("app", "b", False)]


async def test_list_is_oldest_first(store) -> None:
    for i, name in enumerate(["c", "a", "b"]):
        await store.add(record(name, str(i) * 64, created_at=10.0 + i))
    assert [r.name for r in await store.list()] == ["c", "a", "b"]


async def test_touch_many_sets_last_used_and_never_moves_it_back(store) -> None:
    await store.add(record("a", "a" * 64))
    await store.add(record("b", "b" * 64))
    await store.touch_many({"a" * 64: 42.5, "b" * 64: 43.0, "0" * 64: 1.0})  # unknown key: no effect
    assert (await store.get("a" * 64)).last_used_at == 42.5
    assert (await store.get("b" * 64)).last_used_at == 43.0
    assert await store.get("0" * 64) is None
    await store.touch_many({"a" * 64: 40.0})  # a replica flushing late
    assert (await store.get("a" * 64)).last_used_at == 42.5


async def test_rotate_moves_the_name_and_keeps_the_old_record_until_its_grace(store) -> None:
    old, new = record("app", "a" * 64), record("app", "b" * 64, created_at=5.0, models=("m",))
    await store.add(old)
    assert await store.rotate(old, new, grace_until=100.0) is True
    got_old, got_new = await store.get("a" * 64), await store.get("b" * 64)
    assert (got_old.rotated_at, got_old.expires_at, got_old.current) == (5.0, 100.0, False)
    assert got_new == new and got_new.current
    assert await store.rotate(old, record("app", "c" * 64), grace_until=1.0) is False  # not current any more
    with pytest.raises(KeyNameTaken):
        await store.add(record("app", "d" * 64))


async def test_put_restores_a_record_exactly_and_is_idempotent(store) -> None:
    rotated = record("app", "a" * 64, rotated_at=5.0, expires_at=100.0, last_used_at=4.0)
    current = record("app", "b" * 64, created_at=5.0, limits=Limits(rpm=3), models=("m",), expires_at=9e9)
    for _ in range(2):
        await store.put(rotated)
        await store.put(current)
    assert [await store.get("a" * 64), await store.get("b" * 64)] == [rotated, current]
    assert len(await store.list()) == 2
    with pytest.raises(KeyNameTaken):
        await store.put(record("app", "c" * 64))  # another current key has the name
    assert await store.revoke("app", 7.0) is True  # revokes both: the restored grace set works
    assert all(r.revoked_at == 7.0 for r in await store.list())


async def test_the_signing_secret_is_made_once_and_shared(store_factory) -> None:
    first, second = store_factory(), store_factory()
    assert await first.stored_secret() is None
    assert await first.secret("candidate-one") == "candidate-one"
    assert await second.secret("candidate-two") == "candidate-one"
    assert await second.stored_secret() == "candidate-one"


async def test_lookups_are_counted(store) -> None:
    before = store.lookups
    await store.get("0" * 64)
    await store.list()
    assert store.lookups == before + 1


async def test_a_second_store_instance_sees_the_same_data(store_factory) -> None:
    first, second = store_factory(), store_factory()
    await first.add(record())
    assert (await second.get("h" * 64)).name == "app"


async def test_no_plaintext_key_is_stored(store, request, tmp_path: Path) -> None:
    manager = KeyManager(store)
    plaintext, _rec = await manager.create("secretive", rpm=5)
    await manager.authenticate(plaintext)
    await manager.aclose()  # the last_used_at update has landed
    secret = plaintext.encode()
    random_part = plaintext[5:33].encode()
    if request.node.callspec.params["store_factory"] == "redis":
        import redis

        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        blobs = []
        for key in client.scan_iter("*"):
            blobs.append(key)
            kind = client.type(key)
            if kind == b"hash":
                blobs += [b for pair in client.hgetall(key).items() for b in pair]
            elif kind == b"set":
                blobs += list(client.smembers(key))
            elif kind == b"string":
                blobs.append(client.get(key))
        client.close()
        assert blobs, "nothing stored?"
    else:
        blobs = [p.read_bytes() for p in tmp_path.glob(DB_FILENAME + "*")]
        assert any(hash_key(plaintext).encode() in b for b in blobs)
    for blob in blobs:
        assert secret not in blob and random_part not in blob


def test_an_older_embedded_file_is_migrated_in_place(tmp_path: Path) -> None:
    """A database written by the first release (no models/expires/rotated columns, old index)."""
    import sqlite3

    from gateway.auth import SqliteKeyStore
    from gateway.store import EmbeddedDB

    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    conn.executescript(
        """
        CREATE TABLE api_keys (key_hash TEXT PRIMARY KEY, name TEXT NOT NULL, key_id TEXT NOT NULL,
            rpm INTEGER, tpm INTEGER, concurrency INTEGER, presets TEXT, routes TEXT,
            created_at REAL NOT NULL, last_used_at REAL, revoked_at REAL);
        CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
        INSERT INTO api_keys VALUES
            ('aaaa', 'app', 'vlgw_abcdef', 60, NULL, NULL, '["r"]', NULL, 1.0, NULL, NULL);
        """
    )
    conn.close()

    async def check() -> None:
        db = EmbeddedDB.in_dir(tmp_path)
        store = SqliteKeyStore(db)
        SqliteKeyStore(db)  # opening twice (a second process) is harmless
        old = await store.get("aaaa")
        assert old == record("app", "aaaa", limits=Limits(rpm=60), presets=("r",), signed=False)  # legacy
        assert await store.rotate(old, record("app", "bbbb", created_at=2.0), grace_until=9.0)
        db.close()

    import asyncio

    asyncio.run(check())


async def test_redis_records_of_the_first_release_are_copied_into_the_cluster_layout(redis_url) -> None:
    """Keys written by the first release (``vlgw:key:<hash>``, no hash tag) keep working after an upgrade."""
    import redis

    from gateway.auth import RedisKeyStore
    from tests.unit.store.helpers import resilient

    raw = redis.Redis.from_url(redis_url)
    fields = {"name": "app", "key_id": "vlgw_abcdef", "rpm": "60", "tpm": "", "concurrency": "",
              "presets": '["r"]', "routes": "", "created_at": "1.0", "last_used_at": "",
              "revoked_at": ""}  # fmt: skip
    raw.hset("vlgw:key:" + "a" * 64, mapping=fields)
    raw.hset("vlgw:key:" + "b" * 64, mapping={**fields, "name": "gone", "revoked_at": "2.0"})
    raw.set("vlgw:keyname:app", "a" * 64)
    raw.sadd("vlgw:keys", "a" * 64, "b" * 64)
    client = resilient(redis_url, timeout=2)
    store, second = RedisKeyStore(client), RedisKeyStore(client)
    got = await store.get("a" * 64)
    assert got == record("app", "a" * 64, limits=Limits(rpm=60), presets=("r",), signed=False)  # legacy
    assert [r.name for r in await second.list()] == ["app", "gone"]  # a second process: copied once
    with pytest.raises(KeyNameTaken):
        await store.add(record("app", "c" * 64))  # the name index came along
    assert await store.revoke("app", 3.0) is True
    assert raw.exists("vlgw:key:" + "a" * 64)  # left for replicas still on the first release
    assert all(k.startswith(b"vlgw:{keys}:") or k.startswith((b"vlgw:key:", b"vlgw:keyname:", b"vlgw:keys"))
               for k in raw.keys("*"))  # fmt: skip
    raw.close()
    await client.aclose()
