"""Key records in the embedded SQLite file (shared by the CLI and every server process).

Tables: ``api_keys`` (one row per key ever made) and ``vlgw_meta`` (the generated signing
secret). Columns added after the first release are added to an older file on open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from gateway.auth.principal import KeyRecord, Limits
from gateway.auth.store import KeyNameTaken, decode_names, encode_names
from gateway.store.embedded import EmbeddedDB, transaction
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
CREATE TABLE IF NOT EXISTS vlgw_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# ``signed`` is NULL in rows of the first release: those are legacy (CRC32) keys.
ADDED_COLUMNS = {"models": "TEXT", "expires_at": "REAL", "rotated_at": "REAL", "signed": "INTEGER"}
# A rotated-out key keeps its name during its grace, so "current" excludes it (the first
# release's index, on revoked_at alone, is replaced).
NAME_INDEX = """
DROP INDEX IF EXISTS api_keys_active_name;
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_current_name ON api_keys (name)
    WHERE revoked_at IS NULL AND rotated_at IS NULL;
"""
_COLUMNS = (
    "key_hash, name, key_id, rpm, tpm, concurrency, presets, routes, created_at, last_used_at, revoked_at, "
    "models, expires_at, rotated_at, signed"
)
# Built from constants only (no caller input), hence the noqa.
_INSERT = f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"  # noqa: S608
# An upsert on key_hash alone: a clash on the name index still raises (INSERT OR REPLACE would
# silently delete the other key holding the name).
_PUT = (
    f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "  # noqa: S608
    "ON CONFLICT (key_hash) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.replace(" ", "").split(",")[1:])
)
_GET = f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?"  # noqa: S608
_LIST = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, name, key_hash"  # noqa: S608
_SECRET = "vlgw_key_secret"  # noqa: S105  (a row name, not a secret)


def _migrate(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    have = {row["name"] for row in conn.execute("PRAGMA table_info(api_keys)")}
    for column, kind in ADDED_COLUMNS.items():
        if column not in have:
            try:
                conn.execute(f"ALTER TABLE api_keys ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise
    conn.executescript(NAME_INDEX)


def _params(record: KeyRecord) -> tuple[Any, ...]:
    return (
        record.key_hash, record.name, record.key_id, record.limits.rpm, record.limits.tpm,
        record.limits.concurrency, encode_names(record.presets), encode_names(record.routes),
        record.created_at, record.last_used_at, record.revoked_at,
        encode_names(record.models), record.expires_at, record.rotated_at, 1 if record.signed else None,
    )  # fmt: skip


def _record(row: sqlite3.Row) -> KeyRecord:
    return KeyRecord(
        name=row["name"],
        key_id=row["key_id"],
        key_hash=row["key_hash"],
        limits=Limits(rpm=row["rpm"], tpm=row["tpm"], concurrency=row["concurrency"]),
        presets=decode_names(row["presets"]),
        routes=decode_names(row["routes"]),
        models=decode_names(row["models"]),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        expires_at=row["expires_at"],
        rotated_at=row["rotated_at"],
        signed=row["signed"] == 1,
    )


class SqliteKeyStore:
    """:class:`~gateway.auth.store.KeyStore` on the embedded SQLite database."""

    backend = "embedded"

    def __init__(self, db: EmbeddedDB) -> None:
        self.db = db
        self.lookups = 0
        db.run_sync(_migrate)

    async def _call(self, call: Any) -> Any:
        try:
            return await self.db.run(call)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:  # locked past busy_timeout, disk full, corrupt file
            raise StoreUnavailable(f"embedded store failed: {exc}") from exc

    async def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        rows: list[sqlite3.Row] = await self._call(lambda conn: conn.execute(sql, params).fetchall())
        return rows

    async def add(self, record: KeyRecord) -> None:
        try:
            await self._run(_INSERT, _params(record))
        except sqlite3.IntegrityError as exc:
            raise KeyNameTaken(f"an active key is already called {record.name!r}") from exc

    async def get(self, key_hash: str) -> KeyRecord | None:
        self.lookups += 1
        rows = await self._run(_GET, (key_hash,))
        return _record(rows[0]) if rows else None

    async def list(self) -> list[KeyRecord]:
        rows = await self._run(_LIST)
        return [_record(row) for row in rows]

    async def revoke(self, name: str, at: float) -> bool:
        def revoke(conn: sqlite3.Connection) -> bool:
            current = conn.execute(
                "SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL AND rotated_at IS NULL", (name,)
            ).fetchone()
            if current is None:
                return False
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (at, name)
            )
            return True

        done: bool = await self._call(lambda conn: transaction(conn, revoke))
        return done

    async def rotate(self, old: KeyRecord, new: KeyRecord, grace_until: float) -> bool:
        def rotate(conn: sqlite3.Connection) -> bool:
            moved = conn.execute(
                "UPDATE api_keys SET rotated_at = ?, expires_at = ? "
                "WHERE key_hash = ? AND revoked_at IS NULL AND rotated_at IS NULL",
                (new.created_at, grace_until, old.key_hash),
            ).rowcount
            if moved != 1:
                return False
            conn.execute(_INSERT, _params(new))
            return True

        done: bool = await self._call(lambda conn: transaction(conn, rotate))
        return done

    async def touch_many(self, used: Mapping[str, float]) -> None:
        rows = [(at, key_hash, at) for key_hash, at in used.items()]
        sql = "UPDATE api_keys SET last_used_at = ? WHERE key_hash = ? AND coalesce(last_used_at, 0) < ?"
        if rows:
            await self._call(lambda conn: transaction(conn, lambda c: c.executemany(sql, rows)))

    async def put(self, record: KeyRecord) -> None:
        try:
            await self._run(_PUT, _params(record))
        except sqlite3.IntegrityError as exc:
            raise KeyNameTaken(f"another current key is already called {record.name!r}") from exc

    async def secret(self, candidate: str) -> str:
        def call(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT OR IGNORE INTO vlgw_meta (name, value) VALUES (?, ?)", (_SECRET, candidate))
            value: str = conn.execute("SELECT value FROM vlgw_meta WHERE name = ?", (_SECRET,)).fetchone()[0]
            return value

        result: str = await self._call(lambda conn: transaction(conn, call))
        return result

    async def stored_secret(self) -> str | None:
        rows = await self._run("SELECT value FROM vlgw_meta WHERE name = ?", (_SECRET,))
        return str(rows[0]["value"]) if rows else None
