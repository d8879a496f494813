"""One key-store suite over both backends (embedded SQLite, a real Redis), like Litestar's store fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.auth import KeyStore, RedisKeyStore, SqliteKeyStore
from gateway.store import EmbeddedDB
from tests.unit.store.helpers import own_redis, resilient

__all__ = ["own_redis"]

StoreFactory = Callable[[], KeyStore]


@pytest.fixture(params=["embedded", "redis"])
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Makes stores sharing one backing store; each call is a separate 'process' (own connection)."""
    closers = []

    if request.param == "embedded":

        def make() -> KeyStore:
            db = EmbeddedDB.in_dir(tmp_path)
            closers.append(db)
            return SqliteKeyStore(db)

    else:
        url = request.getfixturevalue("redis_url")

        def make() -> KeyStore:
            client = resilient(url, timeout=2.0)  # a loaded CI machine; outages are tested apart
            closers.append(client)
            return RedisKeyStore(client)

    yield make
    for closer in closers:
        if isinstance(closer, EmbeddedDB):
            closer.close()
        else:
            await closer.aclose()


@pytest.fixture
def store(store_factory: StoreFactory) -> KeyStore:
    return store_factory()


class CountingStore:
    """Wraps a real KeyStore and records every call (to prove a key was refused before any lookup)."""

    def __init__(self, inner: KeyStore) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.backend = inner.backend

    @property
    def lookups(self) -> int:
        return self.inner.lookups

    def __getattr__(self, name: str):
        method = getattr(self.inner, name)

        async def call(*args, **kwargs):
            self.calls.append(name)
            return await method(*args, **kwargs)

        return call


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
