"""Export and import of usage and feedback (what ``vlgw backup``/``restore`` use), both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.devex.model import FeedbackEntry
from gateway.devex.redis_store import RedisDevexStore
from gateway.devex.sqlite_store import SqliteDevexStore
from gateway.devex.store import DevexStore
from gateway.store import EmbeddedDB
from tests.unit.store.helpers import resilient

EVER = 2**42 / 1000


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


def entry(created: float, comment: str) -> FeedbackEntry:
    return FeedbackEntry(id="", created=created, key_name="app", request_id=f"r{created}", verdict="bad",
                         comment=comment)  # fmt: skip


async def test_usage_is_listed_and_set_not_added(store: DevexStore) -> None:
    await store.add_usage(
        {("app:one", "2026-11-01"): {"requests": 2, "err:42901": 1}, ("b", "2026-11-02"): {"requests": 1}}
    )
    rows = sorted([row async for row in store.all_usage()])
    assert rows == [
        ("app:one", "2026-11-01", {"requests": 2, "err:42901": 1}),
        ("b", "2026-11-02", {"requests": 1}),
    ]
    for _ in range(2):  # idempotent
        await store.set_usage("app:one", "2026-11-01", {"requests": 5})
    assert await store.get_usage("app:one", ["2026-11-01"]) == {"2026-11-01": {"requests": 5}}


async def test_restored_feedback_is_deduplicated_and_found_by_time(store: DevexStore) -> None:
    await store.add_feedback(entry(2000.0, "live"))
    restored = [entry(1000.0, "older"), entry(3000.0, "newer"), entry(1000.0, "older")]
    assert await store.restore_feedback(restored) == 2
    assert await store.restore_feedback(restored) == 0
    got = [(e.created, e.comment) async for e in store.feedback_between(0.0, EVER)]
    assert got == [(1000.0, "older"), (2000.0, "live"), (3000.0, "newer")]
    assert [e.comment async for e in store.feedback_between(1500.0, 2500.0)] == ["live"]
