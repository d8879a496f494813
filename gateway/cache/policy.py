"""What may be cached, and what the client asked for with ``Cache-Control`` and ``Idempotency-Key``."""

from __future__ import annotations

from enum import Enum

import msgspec

from gateway.errors import InvalidBody

IDEMPOTENCY_KEY_MAX_LENGTH = 255


class CacheMode(Enum):
    """How one request uses the cache."""

    USE = "use"  # look up, coalesce with identical requests in flight, store the answer
    REFRESH = "refresh"  # client sent no-cache: skip the lookup, store the fresh answer
    BYPASS = "bypass"  # not cacheable, or no-store: neither look up nor store


class RequestCacheControl(msgspec.Struct, frozen=True):
    """The request directives the gateway honours."""

    no_cache: bool = False
    no_store: bool = False


def parse_cache_control(value: str | None) -> RequestCacheControl:
    """Parse a request ``Cache-Control`` header; ``max-age=0`` counts as ``no-cache``, unknown
    directives are ignored (RFC 9111 §5.2)."""
    if not value:
        return RequestCacheControl()
    no_cache = no_store = False
    for part in value.split(","):
        name, _, arg = part.strip().partition("=")
        name = name.strip().lower()
        if name == "no-cache":
            no_cache = True
        elif name == "no-store":
            no_store = True
        elif name == "max-age" and arg.strip().strip('"') == "0":
            no_cache = True
    return RequestCacheControl(no_cache=no_cache, no_store=no_store)


def is_reproducible(*, temperature: float | None, n: int = 1, any_temperature: bool = False) -> bool:
    """True when replaying one stored answer is a faithful answer to the request.

    Greedy decoding (temperature 0) by default; any temperature when the operator opted in
    (``cache_any_temperature``, a preset or key flag). Never with ``n > 1``: each of the n
    choices should differ. An unset temperature means the upstream default, which samples.
    """
    if n > 1:
        return False
    if any_temperature:
        return True
    return temperature is not None and temperature == 0


def decide_mode(*, enabled: bool, reproducible: bool, cache_control: RequestCacheControl) -> CacheMode:
    """Combine the operator switch, the policy and the client's header into one mode."""
    if not enabled or not reproducible or cache_control.no_store:
        return CacheMode.BYPASS
    if cache_control.no_cache:
        return CacheMode.REFRESH
    return CacheMode.USE


def validate_idempotency_key(value: str) -> str:
    """Return the header value when it is 1..255 printable ASCII characters, else raise 40001."""
    if not value or len(value) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise InvalidBody(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters", param="Idempotency-Key"
        )
    if not all(" " <= ch <= "~" for ch in value):
        raise InvalidBody("Idempotency-Key must be printable ASCII", param="Idempotency-Key")
    return value
