"""Where key records live: the :class:`KeyStore` protocol and its two backends.

``RedisKeyStore`` when Redis is configured, ``SqliteKeyStore`` (the embedded file in
``GATEWAY_DATA_DIR``) otherwise. Both raise :class:`StoreUnavailable` when the store cannot be
asked, and :class:`KeyNameTaken` when an active key already has the name.
"""

from __future__ import annotations

import json
from typing import Protocol

from gateway.auth.principal import KeyRecord
from gateway.store.redis import StoreUnavailable

__all__ = ["KeyNameTaken", "KeyStore", "StoreUnavailable", "decode_names", "encode_names"]


class KeyNameTaken(ValueError):
    """An active (not revoked) key already has this name."""


class KeyStore(Protocol):
    """Storage of key records, addressed by the SHA-256 of the key."""

    async def add(self, record: KeyRecord) -> None:
        """Store a new record; raise KeyNameTaken if an active key has its name."""
        ...

    async def get(self, key_hash: str) -> KeyRecord | None:
        """The record for this key hash (revoked ones included), or None."""
        ...

    async def list(self) -> list[KeyRecord]:
        """Every record, revoked ones included, oldest first."""
        ...

    async def revoke(self, name: str, at: float) -> bool:
        """Mark the active key called ``name`` revoked; False when there is none."""
        ...

    async def touch(self, key_hash: str, at: float) -> None:
        """Record a use of the key (callers throttle this)."""
        ...


def encode_names(names: tuple[str, ...] | None) -> str | None:
    return None if names is None else json.dumps(list(names))


def decode_names(raw: str | None) -> tuple[str, ...] | None:
    return None if raw is None or raw == "" else tuple(json.loads(raw))
