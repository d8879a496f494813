"""API key format: ``vlgw_<28 base62 chars>_<crc32 of them, 6 base62 chars>``.

The prefix lets leak scanners (and people) recognise a gateway key; the checksum lets the
gateway refuse a mistyped or made-up key before any store lookup. 28 base62 characters carry
166 random bits; the display id (``vlgw_`` plus the first 6 of them) reveals 35 of those, which
still leaves more than 128 secret bits. Only the SHA-256 of the whole key is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib
from collections.abc import Mapping

from gateway.constants import API_KEY_HEADER

KEY_PREFIX = "vlgw_"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 28
CHECKSUM_LENGTH = 6
KEY_ID_LENGTH = 6  # random characters shown in the display id
KEY_LENGTH = len(KEY_PREFIX) + RANDOM_LENGTH + 1 + CHECKSUM_LENGTH
_BASE62_SET = frozenset(BASE62)


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(random_part: str) -> str:
    """The 6-character base62 CRC32 of the random part."""
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def generate_key() -> str:
    """A new random key in the gateway's format."""
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return f"{KEY_PREFIX}{random_part}_{checksum(random_part)}"


def is_well_formed(key: str) -> bool:
    """True when ``key`` has the prefix, the lengths, the alphabet and a matching checksum."""
    if len(key) != KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return False
    body = key[len(KEY_PREFIX) :]
    random_part, sep, check = body[:RANDOM_LENGTH], body[RANDOM_LENGTH], body[RANDOM_LENGTH + 1 :]
    if sep != "_" or not _BASE62_SET.issuperset(random_part) or not _BASE62_SET.issuperset(check):
        return False
    # Not secret (the checksum is derived from the presented key), but costs nothing to do right.
    return hmac.compare_digest(check, checksum(random_part))


def hash_key(key: str) -> str:
    """SHA-256 of the whole key, hex: the only form in which a key is stored."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def key_id(key: str) -> str:
    """Short non-secret display id, e.g. ``vlgw_Ab3xYz``."""
    return key[: len(KEY_PREFIX) + KEY_ID_LENGTH]


def hashes_match(stored: str, computed: str) -> bool:
    """Constant-time comparison of two key hashes."""
    return hmac.compare_digest(stored.encode("ascii"), computed.encode("ascii"))


def extract_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; None when neither is sent."""
    auth = _header(headers, "authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    api_key = _header(headers, API_KEY_HEADER)
    if api_key and api_key.strip():
        return api_key.strip()
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Litestar's and httpx's header mappings are case-insensitive; a plain dict may not be.
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value
