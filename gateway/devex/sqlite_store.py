"""The app-developer features in the embedded SQLite file (``GATEWAY_DATA_DIR``).

Shares the key store's :class:`~gateway.store.embedded.EmbeddedDB` (one file, WAL, one thread).
Request records are pruned as they expire (checked at most once a minute, on write) and capped
at ``MAX_REQUEST_ROWS``, oldest first, so the file stays bounded under any traffic.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

import msgspec

from gateway.devex.model import FeedbackEntry, RequestRecord
from gateway.devex.store import UsageBatch, feedback_digest
from gateway.store.embedded import EmbeddedDB, transaction
from gateway.store.redis import StoreUnavailable

T = TypeVar("T")

MAX_REQUEST_ROWS = 200_000
PRUNE_INTERVAL_SECONDS = 60.0
EXPORT_PAGE = 500
FAR_FUTURE = 2**42 / 1000  # unix seconds past any stored time

SCHEMA = """
CREATE TABLE IF NOT EXISTS devex_requests (
    key_name   TEXT NOT NULL,
    request_id TEXT NOT NULL,
    expires    REAL NOT NULL,
    body       BLOB NOT NULL,
    PRIMARY KEY (key_name, request_id)
);
CREATE INDEX IF NOT EXISTS devex_requests_expires ON devex_requests (expires);
CREATE TABLE IF NOT EXISTS devex_feedback (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    body    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS devex_feedback_created ON devex_feedback (created);
CREATE TABLE IF NOT EXISTS devex_usage (
    key_name TEXT NOT NULL,
    day      TEXT NOT NULL,
    field    TEXT NOT NULL,
    value    INTEGER NOT NULL,
    PRIMARY KEY (key_name, day, field)
) WITHOUT ROWID;
"""
_UPSERT_USAGE = (
    "INSERT INTO devex_usage (key_name, day, field, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key_name, day, field) DO UPDATE SET value = value + excluded.value"
)
_PRUNE_EXPIRED = "DELETE FROM devex_requests WHERE expires < ?"
_PRUNE_OLDEST = (
    "DELETE FROM devex_requests WHERE rowid IN "
    "(SELECT rowid FROM devex_requests ORDER BY expires DESC LIMIT -1 OFFSET ?)"
)


def _select(sql: str, params: tuple[object, ...]) -> Callable[[sqlite3.Connection], list[sqlite3.Row]]:
    def call(conn: sqlite3.Connection) -> list[sqlite3.Row]:
        return conn.execute(sql, params).fetchall()

    return call


class SqliteDevexStore:
    """:class:`~gateway.devex.store.DevexStore` on the embedded SQLite database."""

    backend = "embedded"

    def __init__(self, db: EmbeddedDB, *, max_request_rows: int = MAX_REQUEST_ROWS) -> None:
        self.db = db
        self.max_request_rows = max_request_rows
        self._pruned_at = 0.0
        db.run_sync(lambda conn: conn.executescript(SCHEMA))

    async def _run(self, call: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self.db.run(call)
        except sqlite3.Error as exc:  # locked past busy_timeout, disk full, corrupt file
            raise StoreUnavailable(f"embedded store failed: {exc}") from exc

    async def put_request(self, record: RequestRecord, ttl: int) -> None:
        await self.put_requests([record], ttl)

    async def put_requests(self, records: Sequence[RequestRecord], ttl: int) -> None:
        now = time.time()
        rows = [(r.key_name, r.request_id, now + ttl, msgspec.json.encode(r)) for r in records]
        prune = now - self._pruned_at > PRUNE_INTERVAL_SECONDS
        if prune:
            self._pruned_at = now

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR REPLACE INTO devex_requests VALUES (?, ?, ?, ?)", rows)
            if prune:
                conn.execute(_PRUNE_EXPIRED, (now,))
                conn.execute(_PRUNE_OLDEST, (self.max_request_rows,))

        # One transaction per batch: in autocommit mode every row would be a commit of its own.
        await self._run(lambda conn: transaction(conn, write))

    async def get_request(self, key_name: str, request_id: str) -> RequestRecord | None:
        sql = "SELECT body FROM devex_requests WHERE key_name = ? AND request_id = ? AND expires >= ?"
        params = (key_name, request_id, time.time())
        row = await self._run(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else msgspec.json.decode(row["body"], type=RequestRecord)

    async def add_feedback(self, entry: FeedbackEntry) -> str:
        body = msgspec.json.encode(entry)
        sql = "INSERT INTO devex_feedback (created, body) VALUES (?, ?)"
        cursor = await self._run(lambda conn: conn.execute(sql, (entry.created, body)))
        return str(cursor.lastrowid)

    async def feedback_between(self, since: float, until: float) -> AsyncIterator[FeedbackEntry]:
        # Time order, paged on (created, id): a restore adds older entries with higher ids.
        sql = (
            "SELECT id, created, body FROM devex_feedback WHERE created < ? AND (created, id) > (?, ?) "
            "ORDER BY created, id LIMIT ?"
        )
        after: tuple[float, int] = (since, -1)
        while True:
            rows = await self._run(_select(sql, (until, *after, EXPORT_PAGE)))
            for row in rows:
                entry = msgspec.json.decode(row["body"], type=FeedbackEntry)
                yield msgspec.structs.replace(entry, id=str(row["id"]))
            if len(rows) < EXPORT_PAGE:
                return
            after = (rows[-1]["created"], rows[-1]["id"])

    async def add_usage(self, batch: UsageBatch) -> None:
        rows = [
            (key_name, date, field, amount)
            for (key_name, date), fields in batch.items()
            for field, amount in fields.items()
        ]
        if rows:
            await self._run(lambda conn: transaction(conn, lambda c: c.executemany(_UPSERT_USAGE, rows)))

    async def get_usage(self, key_name: str, dates: list[str]) -> dict[str, dict[str, int]]:
        marks = ",".join("?" * len(dates))
        sql = f"SELECT day, field, value FROM devex_usage WHERE key_name = ? AND day IN ({marks})"  # noqa: S608
        rows = await self._run(lambda conn: conn.execute(sql, (key_name, *dates)).fetchall())
        out: dict[str, dict[str, int]] = {}
        for row in rows:
            out.setdefault(row["day"], {})[row["field"]] = row["value"]
        return out

    # --- backup and restore ----------------------------------------------------------------------

    async def all_usage(self) -> AsyncIterator[tuple[str, str, dict[str, int]]]:
        sql = "SELECT key_name, day, field, value FROM devex_usage ORDER BY key_name, day"
        rows = await self._run(_select(sql, ()))
        current: tuple[str, str] | None = None
        fields: dict[str, int] = {}
        for row in rows:
            if (row["key_name"], row["day"]) != current:
                if current is not None:
                    yield current[0], current[1], fields
                current, fields = (row["key_name"], row["day"]), {}
            fields[row["field"]] = row["value"]
        if current is not None:
            yield current[0], current[1], fields

    async def set_usage(self, key_name: str, date: str, fields: dict[str, int]) -> None:
        rows = [(key_name, date, field, value) for field, value in fields.items()]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM devex_usage WHERE key_name = ? AND day = ?", (key_name, date))
            conn.executemany(
                "INSERT INTO devex_usage (key_name, day, field, value) VALUES (?, ?, ?, ?)", rows
            )

        await self._run(lambda conn: transaction(conn, write))

    async def restore_feedback(self, entries: Sequence[FeedbackEntry]) -> int:
        seen = {feedback_digest(entry) async for entry in self.feedback_between(0.0, FAR_FUTURE)}
        rows = []
        for entry in entries:
            digest = feedback_digest(entry)
            if digest not in seen:
                seen.add(digest)
                rows.append((entry.created, msgspec.json.encode(msgspec.structs.replace(entry, id=""))))
        sql = "INSERT INTO devex_feedback (created, body) VALUES (?, ?)"
        if rows:
            await self._run(lambda conn: transaction(conn, lambda c: c.executemany(sql, rows)))
        return len(rows)
