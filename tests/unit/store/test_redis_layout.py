"""Hash tags (gateway/store/layout.py) and the one-time move of a pre-hash-tag key store."""

from __future__ import annotations

import redis
from redis.crc import key_slot

from gateway.auth import KeyManager, KeyRecord, Limits
from gateway.auth import redis_store as key_names
from gateway.auth.redis_store import RedisKeyStore, _fields
from gateway.limits.redis_backend import state_key
from gateway.settings import Settings
from gateway.store.layout import hash_tag, migrate_legacy_layout
from gateway.store.redis import open_redis
from tests.unit.store.helpers import resilient


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_a_name_with_braces_or_percent_stays_one_whole_tag() -> None:
    for name in ["app", "}", "{", "{}", "a}b{c", "50%", "%7D", ""]:
        slots = {slot(state_key(name, kind)) for kind in ("rpm", "tpm", "conc")}
        assert len(slots) == 1, name
        assert hash_tag(name).count("{") == 1 and hash_tag(name).count("}") == 1
    assert hash_tag("app") == "{app}"
    assert len({hash_tag(n) for n in ["}", "%7D", "%257D", "{"]}) == 4  # one-to-one


def write_legacy_key(client: redis.Redis, record: KeyRecord) -> None:
    """The key store's layout before hash tags (what a deployment of then holds)."""
    client.hset(f"vlgw:key:{record.key_hash}", mapping=_fields(record))
    if not record.revoked:
        client.set(f"vlgw:keyname:{record.name}", record.key_hash)
    client.sadd("vlgw:keys", record.key_hash)


async def test_a_key_store_from_before_hash_tags_is_moved_once_at_open(redis_url: str) -> None:
    old = [
        KeyRecord(name=name, key_id="vlgw_abcdef", key_hash=digit * 64, created_at=1.0, limits=Limits(rpm=5))
        for name, digit in [("mobile-app", "a"), ("batch", "b"), ("odd name {x}", "c")]
    ]
    revoked = KeyRecord(name="batch", key_id="vlgw_000000", key_hash="d" * 64, created_at=0.5, revoked_at=0.7)
    client = redis.Redis.from_url(redis_url)
    for record in [*old, revoked]:
        write_legacy_key(client, record)
    client.set("vlgw:usage:2026-11-01:batch", "untouched")
    settings = Settings(_env_file=None, redis_url=redis_url)  # type: ignore[call-arg]
    async with open_redis(settings) as store:
        assert store is not None
        manager = KeyManager(RedisKeyStore(store))
        listed = await manager.list()
        assert sorted(r.name for r in listed) == ["batch", "batch", "mobile-app", "odd name {x}"]
        assert [r.key_hash for r in listed if r.revoked] == ["d" * 64]
        assert (await RedisKeyStore(store).get("a" * 64)) == old[0]
        assert await manager.revoke("batch")  # the name index moved too
        await manager.aclose()
        assert await migrate_legacy_layout(store) == 0  # nothing left to move
    assert sorted(k.decode() for k in client.keys("vlgw:*")) == sorted(
        [key_names.RECORD_PREFIX + d * 64 for d in "abcd"]
        + [key_names.NAME_PREFIX + "mobile-app", key_names.NAME_PREFIX + "odd name {x}"]
        + [key_names.ALL_KEYS, "vlgw:usage:2026-11-01:batch"]
    )
    client.close()


async def test_an_empty_or_current_store_is_left_alone(redis_url: str) -> None:
    store = resilient(redis_url)
    assert await migrate_legacy_layout(store) == 0
    manager = KeyManager(RedisKeyStore(store))
    await manager.create("fresh")
    assert await migrate_legacy_layout(store) == 0
    assert [r.name for r in await manager.list()] == ["fresh"]
    await manager.aclose()
    await store.aclose()
