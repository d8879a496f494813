"""The embedded SQLite store: WAL mode, shared between instances (processes), transactions."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store import EmbeddedDB
from gateway.store.embedded import DB_FILENAME, transaction


@pytest.fixture
def db(tmp_path: Path):
    database = EmbeddedDB.in_dir(tmp_path / "data")
    yield database
    database.close()


def test_creates_the_data_dir_and_uses_wal(db: EmbeddedDB, tmp_path: Path) -> None:
    assert (tmp_path / "data" / DB_FILENAME).exists()
    assert db.run_sync(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"


async def test_second_instance_sees_writes(db: EmbeddedDB, tmp_path: Path) -> None:
    other = EmbeddedDB.in_dir(tmp_path / "data")
    try:
        await db.run(lambda c: c.execute("CREATE TABLE t (v TEXT)"))
        await db.run(lambda c: c.execute("INSERT INTO t VALUES ('x')"))
        rows = await other.run(lambda c: c.execute("SELECT v FROM t").fetchall())
        assert [tuple(row) for row in rows] == [("x",)]
    finally:
        other.close()


def test_transaction_rolls_back_on_error(db: EmbeddedDB) -> None:
    db.run_sync(lambda c: c.execute("CREATE TABLE t (v TEXT)"))

    def failing(conn):
        conn.execute("INSERT INTO t VALUES ('x')")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        db.run_sync(lambda c: transaction(c, failing))
    assert db.run_sync(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 0
    db.run_sync(lambda c: transaction(c, lambda conn: conn.execute("INSERT INTO t VALUES ('y')")))
    assert db.run_sync(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 1
