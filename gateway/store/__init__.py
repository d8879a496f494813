"""Stores: Redis behind a breaker (:mod:`.redis`) or the embedded SQLite file (:mod:`.embedded`)."""

from gateway.store.embedded import EmbeddedDB
from gateway.store.redis import ResilientRedis, StoreUnavailable

__all__ = ["EmbeddedDB", "ResilientRedis", "StoreUnavailable"]
