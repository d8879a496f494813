"""Content-addressed response cache, request coalescing and idempotent retries (docs/cache.md).

Routes use :class:`ResponseCache` (``key``, ``flight`` / ``get_or_compute``, ``store``) and
:class:`IdempotencyStore` (``attempt`` / ``run``); the policy helpers decide the mode.
"""

from gateway.cache.backends import CacheBackend, MemoryCacheBackend, RedisCacheBackend
from gateway.cache.flight import CoalesceTimeout, SingleFlight
from gateway.cache.idempotency import IdempotencyStore, IdempotentAttempt
from gateway.cache.keys import SAMPLING_FIELDS, KeyMaterial, cache_key, fingerprint, scope_for
from gateway.cache.model import CachedAnswer, CacheStatus, is_storable
from gateway.cache.policy import (
    CacheMode,
    RequestCacheControl,
    decide_mode,
    is_reproducible,
    parse_cache_control,
    validate_idempotency_key,
)
from gateway.cache.service import CacheFlight, ResponseCache
from gateway.cache.urlmemo import UrlHashMemo, freshness_seconds

__all__ = [
    "SAMPLING_FIELDS",
    "CacheBackend",
    "CacheFlight",
    "CacheMode",
    "CacheStatus",
    "CachedAnswer",
    "CoalesceTimeout",
    "IdempotencyStore",
    "IdempotentAttempt",
    "KeyMaterial",
    "MemoryCacheBackend",
    "RedisCacheBackend",
    "RequestCacheControl",
    "ResponseCache",
    "SingleFlight",
    "UrlHashMemo",
    "cache_key",
    "decide_mode",
    "fingerprint",
    "freshness_seconds",
    "is_reproducible",
    "is_storable",
    "parse_cache_control",
    "scope_for",
    "validate_idempotency_key",
]
