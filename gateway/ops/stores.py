"""Opening the gateway's stores: Redis when ``GATEWAY_REDIS_URL`` is set, else the embedded file.

The one place that decides "Redis or embedded", for the server's lifespan and every CLI command,
so that an operator's ``vlgw keys create`` always writes where the server reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.settings import Settings
from gateway.store.embedded import EmbeddedDB
from gateway.store.redis import ResilientRedis, open_redis

OPERATOR_REDIS_TIMEOUT = 10.0  # a CLI command may wait longer than a request (the server: 100 ms)


@dataclass(frozen=True, slots=True)
class Stores:
    """Exactly one of the two is set."""

    redis: ResilientRedis | None
    db: EmbeddedDB | None


@contextlib.asynccontextmanager
async def open_stores(settings: Settings, *, operator: bool = False) -> AsyncIterator[Stores]:
    """The configured store, closed on the way out; ``operator`` for CLI commands' longer timeout.

    Redis is opened by :func:`gateway.store.redis.open_redis` (every URL form it knows)."""
    async with open_redis(settings, call_timeout=OPERATOR_REDIS_TIMEOUT if operator else None) as redis:
        if redis is not None:
            yield Stores(redis, None)
            return
    db = EmbeddedDB.in_dir(settings.data_dir)
    try:
        yield Stores(None, db)
    finally:
        db.close()
