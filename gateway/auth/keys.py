"""API key format: ``vlgw_<28 base62 chars>_<tag>``; only the SHA-256 of a key is ever stored.

Two tags exist:

- **signed** (every key made since #13): 12 base62 characters of HMAC-SHA256(server secret,
  random part). Without ``GATEWAY_KEY_SECRET`` nobody can make a key whose tag checks, so a
  forged key is refused on arithmetic alone: no store lookup, no cache entry.
- **legacy** (older keys): 6 base62 characters of the CRC32 of the random part. Anyone can compute
  it, so a legacy-shaped key still needs a lookup; those are accepted until rotated (and can be
  turned off with ``GATEWAY_KEY_ACCEPT_LEGACY=false``).

The two have different lengths, so the shape says which check applies. 28 base62 characters
carry 166 random bits; the display id (``vlgw_`` plus the first 6 of them) reveals 35 of those.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import zlib
from collections.abc import Mapping

from gateway.constants import API_KEY_HEADER

KEY_PREFIX = "vlgw_"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 28
CHECKSUM_LENGTH = 6  # legacy CRC32 tag
TAG_LENGTH = 12  # HMAC tag: 62**12 ~ 2**71 guesses per forged key
TAG_BYTES = 16  # HMAC-SHA256 truncated to 128 bits, reduced mod 62**12 (bias < 2**-56)
KEY_ID_LENGTH = 6  # random characters shown in the display id
LEGACY_KEY_LENGTH = len(KEY_PREFIX) + RANDOM_LENGTH + 1 + CHECKSUM_LENGTH
KEY_LENGTH = len(KEY_PREFIX) + RANDOM_LENGTH + 1 + TAG_LENGTH
SECRET_MIN_BYTES = 16
_BASE62_SET = frozenset(BASE62)


class KeyShape(enum.Enum):
    """What a presented key turned out to be before any lookup."""

    SIGNED = "signed"
    LEGACY = "legacy"
    MALFORMED = "malformed"


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(random_part: str) -> str:
    """The 6-character base62 CRC32 of the random part (legacy keys)."""
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


class Signer:
    """Makes and checks the keyed tag of new keys with the server secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_MIN_BYTES:
            raise ValueError(f"the key secret must be at least {SECRET_MIN_BYTES} bytes")
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)  # copied per tag: no key setup each time

    def tag(self, random_part: str) -> str:
        mac = self._keyed.copy()
        mac.update(random_part.encode("ascii"))
        digest = mac.digest()
        return _base62(int.from_bytes(digest[:TAG_BYTES], "big") % 62**TAG_LENGTH, TAG_LENGTH)

    def generate(self) -> str:
        """A new random key with a signed tag."""
        random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
        return f"{KEY_PREFIX}{random_part}_{self.tag(random_part)}"

    def verify(self, key: str) -> bool:
        """True when ``key`` is signed-shaped and its tag checks (constant-time compare)."""
        parts = _split(key, TAG_LENGTH)
        return parts is not None and hmac.compare_digest(parts[1], self.tag(parts[0]))


def new_secret() -> str:
    """A fresh server secret (32 random bytes, URL-safe text) for when none is configured."""
    return secrets.token_urlsafe(32)


def _split(key: str, tag_length: int) -> tuple[str, str] | None:
    """(random part, tag) when ``key`` has the prefix, lengths and alphabet for this tag length."""
    if len(key) != len(KEY_PREFIX) + RANDOM_LENGTH + 1 + tag_length or not key.startswith(KEY_PREFIX):
        return None
    body = key[len(KEY_PREFIX) :]
    random_part, sep, tag = body[:RANDOM_LENGTH], body[RANDOM_LENGTH], body[RANDOM_LENGTH + 1 :]
    if sep != "_" or not _BASE62_SET.issuperset(random_part) or not _BASE62_SET.issuperset(tag):
        return None
    return random_part, tag


def shape(key: str) -> KeyShape:
    """Which kind of key this looks like; a legacy key must also carry a correct CRC32."""
    if len(key) == KEY_LENGTH:
        return KeyShape.SIGNED if _split(key, TAG_LENGTH) is not None else KeyShape.MALFORMED
    parts = _split(key, CHECKSUM_LENGTH)
    if parts is not None and hmac.compare_digest(parts[1], checksum(parts[0])):
        return KeyShape.LEGACY
    return KeyShape.MALFORMED


def generate_legacy_key() -> str:
    """A key in the pre-#13 CRC32 format (only to test that such keys keep working)."""
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return f"{KEY_PREFIX}{random_part}_{checksum(random_part)}"


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
