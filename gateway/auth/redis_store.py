"""Key records in Redis: one hash per key, a name index of current keys, a set of all keys.

vlgw:{keys}:key:<sha256>   HASH    name, key_id, rpm, tpm, concurrency, presets, routes, models,
                                   created_at, last_used_at, revoked_at, expires_at, rotated_at,
                                   signed ("1"; absent in first-release records: legacy keys)
                                   ("" = None)
vlgw:{keys}:name:<name>    STRING  sha256 of the current key with that name
vlgw:{keys}:old:<name>     SET     sha256 of its rotated-out keys (revoked together with it)
vlgw:{keys}:all            SET     every sha256 ever created (for ``list``)
vlgw:{keys}:secret         STRING  the generated signing secret (when GATEWAY_KEY_SECRET is unset)
vlgw:{keys}:layout         STRING  "2" once this layout is in use

The ``{keys}`` hash tag puts every key record in one Redis Cluster slot, so the scripts that
change several of them at once (create, rotate, revoke, restore) run on a cluster too. Key
data is small (a few hundred bytes per key), so one slot is no hot spot: lookups are cached.

The first release used ``vlgw:key:<sha256>``, ``vlgw:keyname:<name>`` and ``vlgw:keys``; the
first store call of a process copies those records into this layout once (idempotent, the old
keys are left for replicas not yet upgraded).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from gateway.auth.principal import KeyRecord, Limits
from gateway.auth.store import KeyNameTaken, decode_names, encode_names
from gateway.store.redis import ResilientRedis

PREFIX = "vlgw:{keys}:"
RECORD_PREFIX = PREFIX + "key:"
NAME_PREFIX = PREFIX + "name:"
OLD_PREFIX = PREFIX + "old:"
ALL_KEYS = PREFIX + "all"
SECRET_KEY = PREFIX + "secret"
LAYOUT_KEY = PREFIX + "layout"
LAYOUT = b"2"
V1_RECORD_PREFIX = "vlgw:key:"
V1_ALL_KEYS = "vlgw:keys"

# KEYS: name index, record, all-keys set. ARGV: hash, then field/value pairs.
_ADD = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""
# KEYS: name index, record, rotated-out set. ARGV: expected hash, revoked_at, record prefix.
_REVOKE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'revoked_at', ARGV[2])
for _, old in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local record = ARGV[3] .. old
  if redis.call('EXISTS', record) == 1 then redis.call('HSET', record, 'revoked_at', ARGV[2]) end
end
redis.call('DEL', KEYS[3])
return 1
"""
# KEYS: name index, old record, new record, all-keys set, rotated-out set.
# ARGV: old hash, new hash, rotated_at, old expires_at, then the new record's field/value pairs.
_ROTATE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'rotated_at', ARGV[3], 'expires_at', ARGV[4])
redis.call('HSET', KEYS[3], unpack(ARGV, 5))
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('SADD', KEYS[5], ARGV[1])
return 1
"""
# KEYS: name index, record, all-keys set, rotated-out set.
# ARGV: hash, current ("1"/"0"), in grace ("1"/"0"), then field/value pairs.
_PUT = """
local held = redis.call('GET', KEYS[1])
if ARGV[2] == '1' then
  if held and held ~= ARGV[1] then return 0 end
  redis.call('SET', KEYS[1], ARGV[1])
elseif held == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
redis.call('SADD', KEYS[3], ARGV[1])
if ARGV[3] == '1' then redis.call('SADD', KEYS[4], ARGV[1]) else redis.call('SREM', KEYS[4], ARGV[1]) end
return 1
"""
# Only ever moves last_used_at forward (replicas flush out of order).
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  local seen = tonumber(redis.call('HGET', KEYS[1], 'last_used_at') or '')
  if not seen or seen < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1]) end
end
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
        "models": encode_names(record.models) or "",
        "created_at": repr(record.created_at),
        "last_used_at": _opt(record.last_used_at),
        "revoked_at": _opt(record.revoked_at),
        "expires_at": _opt(record.expires_at),
        "rotated_at": _opt(record.rotated_at),
        "signed": "1" if record.signed else "",
    }


def _pairs(record: KeyRecord) -> list[str]:
    return [item for pair in _fields(record).items() for item in pair]


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
        models=decode_names(f.get("models", "")),
        created_at=float(f["created_at"]),
        last_used_at=_float(f.get("last_used_at", "")),
        revoked_at=_float(f.get("revoked_at", "")),
        expires_at=_float(f.get("expires_at", "")),
        rotated_at=_float(f.get("rotated_at", "")),
        signed=f.get("signed", "") == "1",
    )


class RedisKeyStore:
    """:class:`~gateway.auth.store.KeyStore` on Redis, every call through ResilientRedis."""

    backend = "redis"

    def __init__(self, redis: ResilientRedis) -> None:
        self.redis = redis
        self.lookups = 0
        client = redis.client
        self._add = client.register_script(_ADD)
        self._revoke = client.register_script(_REVOKE)
        self._rotate = client.register_script(_ROTATE)
        self._put = client.register_script(_PUT)
        self._touch = client.register_script(_TOUCH)
        self._layout_ready = False
        self._layout_lock = asyncio.Lock()

    async def _layout(self) -> None:
        """Once per process: mark the layout, copying the first release's records if there are any."""
        if self._layout_ready:
            return
        async with self._layout_lock:  # the first burst of requests checks once
            if self._layout_ready:
                return
            if await self.redis.run("keys_layout", lambda r: r.get(LAYOUT_KEY)) != LAYOUT:
                await self._copy_v1()
                await self.redis.run("keys_layout", lambda r: r.set(LAYOUT_KEY, LAYOUT))
            self._layout_ready = True

    async def _copy_v1(self) -> None:
        hashes = sorted(
            _text(h) for h in await self.redis.run("keys_layout", lambda r: r.smembers(V1_ALL_KEYS))
        )

        async def fetch(r: Any) -> list[dict[bytes, bytes]]:
            pipe = r.pipeline(transaction=False)
            for key_hash in hashes:
                pipe.hgetall(V1_RECORD_PREFIX + key_hash)
            result: list[dict[bytes, bytes]] = await pipe.execute()
            return result

        raws = await self.redis.run("keys_layout", fetch) if hashes else []
        for key_hash, raw in zip(hashes, raws, strict=True):
            if raw:
                with contextlib.suppress(KeyNameTaken):  # a newer key took the name meanwhile
                    await self._write(_record(key_hash, raw))

    async def add(self, record: KeyRecord) -> None:
        await self._layout()
        args = [record.key_hash, *_pairs(record)]
        keys = [NAME_PREFIX + record.name, RECORD_PREFIX + record.key_hash, ALL_KEYS]
        added = await self.redis.run("keys_add", lambda r: self._add(keys=keys, args=args, client=r))
        if not added:
            raise KeyNameTaken(f"an active key is already called {record.name!r}")

    async def get(self, key_hash: str) -> KeyRecord | None:
        await self._layout()
        self.lookups += 1
        raw = await self.redis.run("keys_get", lambda r: r.hgetall(RECORD_PREFIX + key_hash))
        return _record(key_hash, raw) if raw else None

    async def list(self) -> list[KeyRecord]:
        await self._layout()
        hashes = sorted(_text(h) for h in await self.redis.run("keys_list", lambda r: r.smembers(ALL_KEYS)))

        async def fetch(r: Any) -> list[dict[bytes, bytes]]:
            pipe = r.pipeline(transaction=False)
            for key_hash in hashes:
                pipe.hgetall(RECORD_PREFIX + key_hash)
            result: list[dict[bytes, bytes]] = await pipe.execute()
            return result

        raws = await self.redis.run("keys_list", fetch)
        records = [_record(h, raw) for h, raw in zip(hashes, raws, strict=True) if raw]
        return sorted(records, key=lambda rec: (rec.created_at, rec.name, rec.key_hash))

    async def revoke(self, name: str, at: float) -> bool:
        await self._layout()
        raw = await self.redis.run("keys_revoke", lambda r: r.get(NAME_PREFIX + name))
        if raw is None:
            return False
        key_hash = _text(raw)
        keys = [NAME_PREFIX + name, RECORD_PREFIX + key_hash, OLD_PREFIX + name]
        args = [key_hash, repr(at), RECORD_PREFIX]
        done = await self.redis.run("keys_revoke", lambda r: self._revoke(keys=keys, args=args, client=r))
        return bool(done)

    async def rotate(self, old: KeyRecord, new: KeyRecord, grace_until: float) -> bool:
        await self._layout()
        assert new.rotated_at is None and old.name == new.name  # the caller's contract
        keys = [
            NAME_PREFIX + old.name, RECORD_PREFIX + old.key_hash, RECORD_PREFIX + new.key_hash,
            ALL_KEYS, OLD_PREFIX + old.name,
        ]  # fmt: skip
        args = [old.key_hash, new.key_hash, repr(new.created_at), repr(grace_until), *_pairs(new)]
        done = await self.redis.run("keys_rotate", lambda r: self._rotate(keys=keys, args=args, client=r))
        return bool(done)

    async def touch_many(self, used: Mapping[str, float]) -> None:
        await self._layout()

        async def write(r: Any) -> None:
            pipe = r.pipeline(transaction=False)
            for key_hash, at in used.items():
                await self._touch(keys=[RECORD_PREFIX + key_hash], args=[repr(at)], client=pipe)
            await pipe.execute()

        if used:
            await self.redis.run("keys_touch", write)

    async def put(self, record: KeyRecord) -> None:
        await self._layout()
        await self._write(record)

    async def _write(self, record: KeyRecord) -> None:
        in_grace = record.rotated_at is not None and not record.revoked
        args = [record.key_hash, "1" if record.current else "0", "1" if in_grace else "0", *_pairs(record)]
        keys = [
            NAME_PREFIX + record.name,
            RECORD_PREFIX + record.key_hash,
            ALL_KEYS,
            OLD_PREFIX + record.name,
        ]
        done = await self.redis.run("keys_put", lambda r: self._put(keys=keys, args=args, client=r))
        if not done:
            raise KeyNameTaken(f"another current key is already called {record.name!r}")

    async def secret(self, candidate: str) -> str:
        await self._layout()

        async def call(r: Any) -> Any:
            await r.set(SECRET_KEY, candidate, nx=True)
            return await r.get(SECRET_KEY)

        return _text(await self.redis.run("keys_secret", call))

    async def stored_secret(self) -> str | None:
        await self._layout()
        raw = await self.redis.run("keys_secret", lambda r: r.get(SECRET_KEY))
        return None if raw is None else _text(raw)
