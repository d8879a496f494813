"""API keys: format, storage (Redis or embedded SQLite), cached authentication, principals.

Typical use in a route::

    principal = await key_manager.authenticate(extract_key(request.headers), client=request.client.host)
    principal.check_route(ROUTE_APP)
    principal.check_model(requested_model, served=served_model)
    principal.check_preset(preset_name)
"""

from gateway.auth.factory import build_key_manager, build_key_store
from gateway.auth.keys import KeyShape, Signer, extract_key, hash_key, shape
from gateway.auth.manager import KeyManager
from gateway.auth.principal import KeyRecord, Limits, Principal
from gateway.auth.redis_store import RedisKeyStore
from gateway.auth.sqlite_store import SqliteKeyStore
from gateway.auth.store import KeyNameTaken, KeyStore

__all__ = [
    "KeyManager",
    "KeyNameTaken",
    "KeyRecord",
    "KeyShape",
    "KeyStore",
    "Limits",
    "Principal",
    "RedisKeyStore",
    "Signer",
    "SqliteKeyStore",
    "build_key_manager",
    "build_key_store",
    "extract_key",
    "hash_key",
    "shape",
]
