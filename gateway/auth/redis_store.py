"""Key records in Redis: one hash per key, a name index of active keys, a set of all keys.

vlgw:key:<sha256>      HASH  name, key_id, rpm, tpm, concurrency, presets, routes,
                             created_at, last_used_at, revoked_at  ("" = None)
vlgw:keyname:<name>    STRING  sha256 of the active key with that name
vlgw:keys              SET   every sha256 ever created (for ``list``)
"""

from __future__ import annotations

from typing import Any

from gateway.auth.principal import KeyRecord, Limits
from gateway.auth.store import KeyNameTaken, decode_names, encode_names
from gateway.store.redis import ResilientRedis

RECORD_PREFIX = "vlgw:key:"
NAME_PREFIX = "vlgw:keyname:"
ALL_KEYS = "vlgw:keys"

# KEYS: name index, record, all-keys set. ARGV: hash, then field/value pairs.
_ADD = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""
# KEYS: name index, record. ARGV: expected hash, revoked_at.
_REVOKE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'revoked_at', ARGV[2])
return 1
"""
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1]) end
return 1
"""


def _opt(value: int | float | None) -> str:
    return "" if value is None else repr(value)


def _int(raw: str) -> int | None:
    return int(raw) if raw else None


def _float(raw: str) -> float | None:
    return float(raw) if raw else None


def _fields(record: KeyRecord) -> dict[str, str]:
    return {
        "name": record.name,
        "key_id": record.key_id,
        "rpm": _opt(record.limits.rpm),
        "tpm": _opt(record.limits.tpm),
        "concurrency": _opt(record.limits.concurrency),
        "presets": encode_names(record.presets) or "",
        "routes": encode_names(record.routes) or "",
        "created_at": repr(record.created_at),
        "last_used_at": _opt(record.last_used_at),
        "revoked_at": _opt(record.revoked_at),
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _record(key_hash: str, raw: dict[Any, Any]) -> KeyRecord:
    f = {_text(k): _text(v) for k, v in raw.items()}
    return KeyRecord(
        name=f["name"],
        key_id=f["key_id"],
        key_hash=key_hash,
        limits=Limits(rpm=_int(f["rpm"]), tpm=_int(f["tpm"]), concurrency=_int(f["concurrency"])),
        presets=decode_names(f["presets"]),
        routes=decode_names(f["routes"]),
        created_at=float(f["created_at"]),
        last_used_at=_float(f.get("last_used_at", "")),
        revoked_at=_float(f.get("revoked_at", "")),
    )


class RedisKeyStore:
    """:class:`~gateway.auth.store.KeyStore` on Redis, every call through ResilientRedis."""

    backend = "redis"

    def __init__(self, redis: ResilientRedis) -> None:
        self.redis = redis
        client = redis.client
        self._add = client.register_script(_ADD)
        self._revoke = client.register_script(_REVOKE)
        self._touch = client.register_script(_TOUCH)

    async def add(self, record: KeyRecord) -> None:
        args: list[Any] = [record.key_hash]
        for name, value in _fields(record).items():
            args += [name, value]
        keys = [NAME_PREFIX + record.name, RECORD_PREFIX + record.key_hash, ALL_KEYS]
        added = await self.redis.run("keys_add", lambda r: self._add(keys=keys, args=args, client=r))
        if not added:
            raise KeyNameTaken(f"an active key is already called {record.name!r}")

    async def get(self, key_hash: str) -> KeyRecord | None:
        raw = await self.redis.run("keys_get", lambda r: r.hgetall(RECORD_PREFIX + key_hash))
        return _record(key_hash, raw) if raw else None

    async def list(self) -> list[KeyRecord]:
        hashes = sorted(_text(h) for h in await self.redis.run("keys_list", lambda r: r.smembers(ALL_KEYS)))

        async def fetch(r: Any) -> list[dict[bytes, bytes]]:
            pipe = r.pipeline(transaction=False)
            for key_hash in hashes:
                pipe.hgetall(RECORD_PREFIX + key_hash)
            result: list[dict[bytes, bytes]] = await pipe.execute()
            return result

        raws = await self.redis.run("keys_list", fetch)
        records = [_record(h, raw) for h, raw in zip(hashes, raws, strict=True) if raw]
        return sorted(records, key=lambda rec: (rec.created_at, rec.name))

    async def revoke(self, name: str, at: float) -> bool:
        raw = await self.redis.run("keys_revoke", lambda r: r.get(NAME_PREFIX + name))
        if raw is None:
            return False
        key_hash = _text(raw)
        keys = [NAME_PREFIX + name, RECORD_PREFIX + key_hash]
        done = await self.redis.run(
            "keys_revoke", lambda r: self._revoke(keys=keys, args=[key_hash, repr(at)], client=r)
        )
        return bool(done)

    async def touch(self, key_hash: str, at: float) -> None:
        keys = [RECORD_PREFIX + key_hash]
        await self.redis.run("keys_touch", lambda r: self._touch(keys=keys, args=[repr(at)], client=r))
