"""Key records in the embedded SQLite file (shared by the CLI and every server process)."""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.auth.principal import KeyRecord, Limits
from gateway.auth.store import KeyNameTaken, decode_names, encode_names
from gateway.store.embedded import EmbeddedDB
from gateway.store.redis import StoreUnavailable

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash     TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    rpm          INTEGER,
    tpm          INTEGER,
    concurrency  INTEGER,
    presets      TEXT,
    routes       TEXT,
    created_at   REAL NOT NULL,
    last_used_at REAL,
    revoked_at   REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
"""
_COLUMNS = (
    "key_hash, name, key_id, rpm, tpm, concurrency, presets, routes, created_at, last_used_at, revoked_at"
)
# Built from constants only (no caller input), hence the noqa.
_INSERT = f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"  # noqa: S608
_GET = f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?"  # noqa: S608
_LIST = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, name"  # noqa: S608


def _record(row: sqlite3.Row) -> KeyRecord:
    return KeyRecord(
        name=row["name"],
        key_id=row["key_id"],
        key_hash=row["key_hash"],
        limits=Limits(rpm=row["rpm"], tpm=row["tpm"], concurrency=row["concurrency"]),
        presets=decode_names(row["presets"]),
        routes=decode_names(row["routes"]),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


class SqliteKeyStore:
    """:class:`~gateway.auth.store.KeyStore` on the embedded SQLite database."""

    backend = "embedded"

    def __init__(self, db: EmbeddedDB) -> None:
        self.db = db
        db.run_sync(lambda conn: conn.executescript(SCHEMA))

    async def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return await self.db.run(lambda conn: conn.execute(sql, params).fetchall())
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:  # locked past busy_timeout, disk full, corrupt file
            raise StoreUnavailable(f"embedded store failed: {exc}") from exc

    async def add(self, record: KeyRecord) -> None:
        params = (
            record.key_hash, record.name, record.key_id, record.limits.rpm, record.limits.tpm,
            record.limits.concurrency, encode_names(record.presets), encode_names(record.routes),
            record.created_at, record.last_used_at, record.revoked_at,
        )  # fmt: skip
        try:
            await self._run(_INSERT, params)
        except sqlite3.IntegrityError as exc:
            raise KeyNameTaken(f"an active key is already called {record.name!r}") from exc

    async def get(self, key_hash: str) -> KeyRecord | None:
        rows = await self._run(_GET, (key_hash,))
        return _record(rows[0]) if rows else None

    async def list(self) -> list[KeyRecord]:
        rows = await self._run(_LIST)
        return [_record(row) for row in rows]

    async def revoke(self, name: str, at: float) -> bool:
        rows = await self._run(
            "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL RETURNING key_hash",
            (at, name),
        )
        return bool(rows)

    async def touch(self, key_hash: str, at: float) -> None:
        await self._run("UPDATE api_keys SET last_used_at = ? WHERE key_hash = ?", (at, key_hash))
