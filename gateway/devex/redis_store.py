"""The app-developer features in Redis.

vlgw:req:<key-hash>:<request id>   STRING  RequestRecord (JSON), EX 7 days
vlgw:feedback                      STREAM  field ``e`` = FeedbackEntry (JSON); capped (MAXLEN ~)
vlgw:usage:<YYYY-MM-DD>:<key name> HASH    requests, prompt_tokens, ..., err:<code>; EXPIRE 400 d

Every command here names one key (pipelines of them are split by node on a Redis Cluster), so no
hash tag is needed (gateway/store/layout.py).

Request records are stored under a digest of the key name as well as the id: a client may send
its own X-Request-Id, so ids alone could collide across keys, and one key must never see (or
overwrite) another key's record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import msgspec
import redis.asyncio as aioredis

from gateway.devex.model import USAGE_TTL_DAYS, FeedbackEntry, RequestRecord
from gateway.devex.store import UsageBatch, feedback_digest
from gateway.store.redis import ResilientRedis

REQUEST_PREFIX = "vlgw:req:"
FEEDBACK_STREAM = "vlgw:feedback"
USAGE_PREFIX = "vlgw:usage:"
FEEDBACK_MAXLEN = 1_000_000
EXPORT_PAGE = 500


def _request_key(key_name: str, request_id: str) -> str:
    owner = hashlib.sha256(key_name.encode()).hexdigest()[:16]
    return f"{REQUEST_PREFIX}{owner}:{request_id}"


def _usage_key(key_name: str, date: str) -> str:
    return f"{USAGE_PREFIX}{date}:{key_name}"


Page = list[tuple[bytes, dict[bytes, bytes]]]


def _xrange(low: str, high: str) -> Callable[[aioredis.Redis], Awaitable[Page]]:
    async def call(r: aioredis.Redis) -> Page:
        page = await r.xrange(FEEDBACK_STREAM, min=low, max=high, count=EXPORT_PAGE)
        return cast(Page, page or [])

    return call


class RedisDevexStore:
    """:class:`~gateway.devex.store.DevexStore` on Redis (shared by every gateway replica)."""

    backend = "redis"

    def __init__(self, redis: ResilientRedis) -> None:
        self.redis = redis

    async def put_request(self, record: RequestRecord, ttl: int) -> None:
        await self.put_requests([record], ttl)

    async def put_requests(self, records: Sequence[RequestRecord], ttl: int) -> None:
        items = [(_request_key(r.key_name, r.request_id), msgspec.json.encode(r)) for r in records]

        async def write(r: Any) -> None:
            pipe = r.pipeline(transaction=False)
            for key, value in items:
                pipe.set(key, value, ex=ttl)
            await pipe.execute()

        await self.redis.run("devex_put_request", write)

    async def get_request(self, key_name: str, request_id: str) -> RequestRecord | None:
        key = _request_key(key_name, request_id)
        raw = await self.redis.run("devex_get_request", lambda r: r.get(key))
        return None if raw is None else msgspec.json.decode(raw, type=RequestRecord)

    async def add_feedback(self, entry: FeedbackEntry) -> str:
        value = msgspec.json.encode(entry)
        # The stream id is taken from the entry's time, so ``feedback_between`` is an XRANGE.
        entry_id: Any = await self.redis.run(
            "devex_add_feedback",
            lambda r: r.xadd(FEEDBACK_STREAM, {"e": value}, maxlen=FEEDBACK_MAXLEN, approximate=True),
        )
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def feedback_between(self, since: float, until: float) -> AsyncIterator[FeedbackEntry]:
        low, high = f"{int(since * 1000)}", f"({int(until * 1000)}"
        while True:
            page = await self.redis.run("devex_export_feedback", _xrange(low, high))
            for stream_id, fields in page:
                entry = msgspec.json.decode(fields[b"e"], type=FeedbackEntry)
                yield msgspec.structs.replace(entry, id=stream_id.decode())
            if len(page) < EXPORT_PAGE:
                return
            low = "(" + page[-1][0].decode()

    async def add_usage(self, batch: UsageBatch) -> None:
        async def write(r: aioredis.Redis) -> None:
            pipe = r.pipeline(transaction=False)
            for (key_name, date), fields in batch.items():
                key = _usage_key(key_name, date)
                for field, amount in fields.items():
                    pipe.hincrby(key, field, amount)
                pipe.expire(key, USAGE_TTL_DAYS * 86_400)
            await pipe.execute()

        if batch:
            await self.redis.run("devex_add_usage", write)

    async def get_usage(self, key_name: str, dates: list[str]) -> dict[str, dict[str, int]]:
        async def read(r: aioredis.Redis) -> list[dict[bytes, bytes]]:
            pipe = r.pipeline(transaction=False)
            for date in dates:
                pipe.hgetall(_usage_key(key_name, date))
            result: list[dict[bytes, bytes]] = await pipe.execute()
            return result

        rows = await self.redis.run("devex_get_usage", read)
        return {
            date: {field.decode(): int(value) for field, value in row.items()}
            for date, row in zip(dates, rows, strict=True)
            if row
        }

    # --- backup and restore ----------------------------------------------------------------------

    async def all_usage(self) -> AsyncIterator[tuple[str, str, dict[str, int]]]:
        cursor: int = 0
        while True:
            cursor, names = await self.redis.run("devex_export_usage", _scan_usage(cursor))
            rows = await self.redis.run("devex_export_usage", _hgetall_each(names))
            for name, row in zip(names, rows, strict=True):
                date_and_key = _text(name)[len(USAGE_PREFIX) :]
                if row:  # expired between SCAN and HGETALL
                    yield date_and_key[11:], date_and_key[:10], {_text(f): int(v) for f, v in row.items()}
            if cursor == 0:
                return

    async def set_usage(self, key_name: str, date: str, fields: dict[str, int]) -> None:
        key = _usage_key(key_name, date)
        day = dt.datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        expire_at = int(day.timestamp()) + USAGE_TTL_DAYS * 86_400

        async def write(r: aioredis.Redis) -> None:
            pipe = r.pipeline(transaction=True)
            pipe.delete(key)
            if fields:
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
                pipe.expireat(key, expire_at)
            await pipe.execute()

        await self.redis.run("devex_restore_usage", write)

    async def restore_feedback(self, entries: Sequence[FeedbackEntry]) -> int:
        # Stream ids carry the time that ``feedback_between`` ranges over, and XADD only appends,
        # so older entries go in by rewriting the stream: existing and new entries in time order,
        # in one MULTI/EXEC on the one key (atomic; feedback arriving meanwhile waits for it).
        existing = [entry async for entry in self.feedback_between(0.0, FAR_FUTURE)]
        seen = {feedback_digest(entry) for entry in existing}
        added: list[FeedbackEntry] = []
        for entry in entries:
            digest = feedback_digest(entry)
            if digest not in seen:
                seen.add(digest)
                added.append(entry)
        if not added:
            return 0
        merged = sorted([*existing, *added], key=lambda e: e.created)

        async def write(r: aioredis.Redis) -> None:
            pipe = r.pipeline(transaction=True)
            pipe.delete(FEEDBACK_STREAM)
            last_ms, seq = -1, 0
            for entry in merged:
                ms = max(int(entry.created * 1000), last_ms)
                seq = seq + 1 if ms == last_ms else 0
                last_ms = ms
                value = msgspec.json.encode(msgspec.structs.replace(entry, id=""))
                pipe.xadd(FEEDBACK_STREAM, {"e": value}, id=f"{ms}-{seq}")
            await pipe.execute()

        await self.redis.run("devex_restore_feedback", write)
        return len(added)


FAR_FUTURE = 2**42 / 1000  # later than any stream id's millisecond time


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _scan_usage(cursor: int) -> Callable[[aioredis.Redis], Awaitable[tuple[int, list[bytes]]]]:
    async def call(r: aioredis.Redis) -> tuple[int, list[bytes]]:
        found = await r.scan(cursor, match=USAGE_PREFIX + "*", count=EXPORT_PAGE)
        return cast(tuple[int, list[bytes]], found)

    return call


def _hgetall_each(names: list[bytes]) -> Callable[[aioredis.Redis], Awaitable[list[dict[bytes, bytes]]]]:
    async def call(r: aioredis.Redis) -> list[dict[bytes, bytes]]:
        pipe = r.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(name)
        return cast(list[dict[bytes, bytes]], await pipe.execute())

    return call
