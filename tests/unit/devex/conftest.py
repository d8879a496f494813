"""One devex-store suite over both backends (embedded SQLite, a real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.devex import DevexStore, RedisDevexStore, SqliteDevexStore
from gateway.store import EmbeddedDB
from tests.unit.store.helpers import resilient


@pytest.fixture(params=["embedded", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DevexStore]:
    if request.param == "embedded":
        db = EmbeddedDB.in_dir(tmp_path)
        yield SqliteDevexStore(db)
        db.close()
    else:
        client = resilient(request.getfixturevalue("redis_url"), timeout=2.0)
        yield RedisDevexStore(client)
        await client.aclose()
