"""The embedded store: one SQLite file in ``GATEWAY_DATA_DIR``, shared by the CLI and the server.

SQLite in WAL mode lets several processes (``vlgw keys ...`` and every server worker) read and
write the same file safely; ``busy_timeout`` makes a writer wait for another writer's lock
instead of failing. Calls run on one dedicated thread per process, so the event loop never
blocks on disk and the connection is never used from two threads at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

DB_FILENAME = "vlgw.sqlite3"
BUSY_TIMEOUT_MS = 5000


class EmbeddedDB:
    """A SQLite database file opened in WAL mode, with an async ``run`` and a sync ``run_sync``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vlgw-sqlite")
        self._conn = self._executor.submit(self._connect).result()

    @classmethod
    def in_dir(cls, data_dir: Path) -> EmbeddedDB:
        """The shared database file inside ``data_dir`` (created if missing)."""
        return cls(data_dir / DB_FILENAME)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: autocommit; callers use explicit BEGIN IMMEDIATE for multi-step writes.
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return conn

    async def run(self, call: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``call(connection)`` on the database thread without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, call, self._conn)

    def run_sync(self, call: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``call(connection)`` on the database thread and wait (for the CLI and start-up)."""
        return self._executor.submit(call, self._conn).result()

    def close(self) -> None:
        self._executor.submit(self._conn.close).result()
        self._executor.shutdown(wait=True)


def transaction(conn: sqlite3.Connection, statements: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``statements`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = statements(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
