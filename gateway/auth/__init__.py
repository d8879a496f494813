"""API keys: format, storage (Redis or embedded SQLite), cached authentication, principals.

Typical use in a route::

    principal = await key_manager.authenticate(extract_key(request.headers))
    principal.check_route(ROUTE_APP)
"""

from gateway.auth.factory import build_key_manager, build_key_store
from gateway.auth.keys import extract_key, generate_key, hash_key, is_well_formed
from gateway.auth.manager import KeyManager
from gateway.auth.principal import KeyRecord, Limits, Principal
from gateway.auth.redis_store import RedisKeyStore
from gateway.auth.sqlite_store import SqliteKeyStore
from gateway.auth.store import KeyNameTaken, KeyStore

__all__ = [
    "KeyManager",
    "KeyNameTaken",
    "KeyRecord",
    "KeyStore",
    "Limits",
    "Principal",
    "RedisKeyStore",
    "SqliteKeyStore",
    "build_key_manager",
    "build_key_store",
    "extract_key",
    "generate_key",
    "hash_key",
    "is_well_formed",
]
