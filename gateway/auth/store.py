"""Where key records live: the :class:`KeyStore` protocol and its two backends.

``RedisKeyStore`` when Redis is configured, ``SqliteKeyStore`` (the embedded file in
``GATEWAY_DATA_DIR``) otherwise. Both raise :class:`StoreUnavailable` when the store cannot be
asked, and :class:`KeyNameTaken` when a current key already has the name. Both count their
lookups in ``lookups`` (what the forged-key tests and the bench read).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Protocol

from gateway.auth.principal import KeyRecord
from gateway.store.redis import StoreUnavailable

__all__ = ["KeyNameTaken", "KeyStore", "StoreUnavailable", "decode_names", "encode_names"]


class KeyNameTaken(ValueError):
    """A current (not revoked, not rotated-out) key already has this name."""


class KeyStore(Protocol):
    """Storage of key records, addressed by the SHA-256 of the key."""

    backend: str
    lookups: int  # calls of ``get``, i.e. store round trips made to authenticate

    async def add(self, record: KeyRecord) -> None:
        """Store a new record; raise KeyNameTaken if a current key has its name."""
        ...

    async def get(self, key_hash: str) -> KeyRecord | None:
        """The record for this key hash (revoked ones included), or None."""
        ...

    async def list(self) -> list[KeyRecord]:
        """Every record, revoked and rotated-out ones included, oldest first."""
        ...

    async def revoke(self, name: str, at: float) -> bool:
        """Revoke the current key called ``name`` and its rotated-out predecessors; False when none."""
        ...

    async def rotate(self, old: KeyRecord, new: KeyRecord, grace_until: float) -> bool:
        """Make ``new`` the current key of ``old.name``; ``old`` stays valid until ``grace_until``.

        False when ``old`` is no longer the current key of its name (revoked or rotated meanwhile).
        """
        ...

    async def touch_many(self, used: Mapping[str, float]) -> None:
        """Record the last use of several keys in one round trip (callers throttle this)."""
        ...

    async def put(self, record: KeyRecord) -> None:
        """Insert or replace a record exactly (restore); KeyNameTaken if another current key has its name."""
        ...

    async def secret(self, candidate: str) -> str:
        """The stored signing secret; stores ``candidate`` first when there is none yet."""
        ...

    async def stored_secret(self) -> str | None:
        """The stored signing secret, or None (never creates one)."""
        ...


def encode_names(names: tuple[str, ...] | None) -> str | None:
    return None if names is None else json.dumps(list(names))


def decode_names(raw: str | None) -> tuple[str, ...] | None:
    return None if raw is None or raw == "" else tuple(json.loads(raw))
