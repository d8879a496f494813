"""Build the key store and manager from settings: Redis when configured, else the embedded file."""

from __future__ import annotations

from gateway.auth.manager import KeyManager
from gateway.auth.redis_store import RedisKeyStore
from gateway.auth.sqlite_store import SqliteKeyStore
from gateway.auth.store import KeyStore
from gateway.settings import Settings
from gateway.store.embedded import EmbeddedDB
from gateway.store.redis import ResilientRedis


def build_key_store(
    settings: Settings, redis: ResilientRedis | None = None, db: EmbeddedDB | None = None
) -> KeyStore:
    """RedisKeyStore when ``redis`` is given, else SqliteKeyStore on ``db`` (or the file in data_dir)."""
    if redis is not None:
        return RedisKeyStore(redis)
    return SqliteKeyStore(db if db is not None else EmbeddedDB.in_dir(settings.data_dir))


def build_key_manager(
    settings: Settings, redis: ResilientRedis | None = None, db: EmbeddedDB | None = None
) -> KeyManager:
    """The KeyManager the server and the CLI use (cache window, secret, auth switch from settings)."""
    return KeyManager(
        build_key_store(settings, redis, db),
        cache_seconds=settings.key_cache_seconds,
        auth_disabled=settings.auth_disabled,
        secret=key_secret(settings),
        accept_legacy=settings.key_accept_legacy,
    )


def key_secret(settings: Settings) -> str | None:
    """``GATEWAY_KEY_SECRET`` as text, or None (then the store keeps a generated one)."""
    return None if settings.key_secret is None else settings.key_secret.get_secret_value()
