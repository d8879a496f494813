"""Key format: prefix, length, alphabet, HMAC tag (new keys) or CRC32 checksum (legacy); headers."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import zlib

import pytest

from gateway.auth import KeyShape, Signer, extract_key, hash_key, shape
from gateway.auth.keys import BASE62, KEY_LENGTH, LEGACY_KEY_LENGTH, checksum, generate_legacy_key, key_id

KEY_RE = re.compile(r"^vlgw_[0-9A-Za-z]{28}_[0-9A-Za-z]{12}$")
SIGNER = Signer(b"test-secret-of-32-bytes-0123456789")


def _base62_value(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 62 + BASE62.index(ch)
    return value


def test_generated_keys_have_the_documented_shape() -> None:
    keys = {SIGNER.generate() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert KEY_RE.match(key), key
        assert len(key) == KEY_LENGTH
        assert shape(key) is KeyShape.SIGNED and SIGNER.verify(key)


def test_tag_is_truncated_hmac_sha256_of_the_random_part() -> None:
    secret = b"another-secret-value-0123456789"
    key = Signer(secret).generate()
    digest = hmac.new(secret, key[5:33].encode(), hashlib.sha256).digest()
    assert _base62_value(key[-12:]) == int.from_bytes(digest[:16], "big") % 62**12


def test_a_key_signed_with_another_secret_fails() -> None:
    other = Signer(b"a-different-secret-0123456789").generate()
    assert shape(other) is KeyShape.SIGNED  # the shape alone can't tell ...
    assert not SIGNER.verify(other)  # ... the tag can


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Signer(b"short")


def test_random_part_carries_at_least_128_bits_beyond_the_display_id() -> None:
    key = SIGNER.generate()
    hidden = 28 - (len(key_id(key)) - len("vlgw_"))
    assert hidden * math.log2(len(BASE62)) >= 128


def test_legacy_keys_are_recognised_by_their_crc32() -> None:
    key = generate_legacy_key()
    assert len(key) == LEGACY_KEY_LENGTH and shape(key) is KeyShape.LEGACY
    assert _base62_value(key[-6:]) == zlib.crc32(key[5:33].encode())
    assert checksum(key[5:33]) == key[-6:]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda k: k[:-1] + ("0" if k[-1] != "0" else "1"),  # tag off by one char
        lambda k: k[:10] + ("A" if k[10] != "A" else "B") + k[11:],  # random part changed
        lambda k: "sk_" + k[5:],  # wrong prefix
        lambda k: k + "x",  # too long
        lambda k: k[:-1],  # too short
        lambda k: k.replace("_", "-"),  # wrong separator
        lambda k: k[:7] + "!" + k[8:],  # outside the alphabet
        lambda k: k[:7] + "é" + k[8:],  # non-ASCII
        lambda k: "",
    ],
)
def test_tampered_keys_fail(mutate) -> None:
    signed, legacy = mutate(SIGNER.generate()), mutate(generate_legacy_key())
    assert shape(signed) is KeyShape.MALFORMED or not SIGNER.verify(signed)
    assert shape(legacy) is not KeyShape.LEGACY


def test_hash_is_sha256_hex_of_the_whole_key() -> None:
    key = SIGNER.generate()
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert key not in hash_key(key)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"Authorization": "bearer   abc  "}, "abc"),
        ({"AUTHORIZATION": "Bearer abc"}, "abc"),
        ({"x-api-key": "abc"}, "abc"),
        ({"X-API-Key": " abc "}, "abc"),
        ({"authorization": "Basic dXNlcjpwYXNz", "x-api-key": "abc"}, "abc"),
        ({"authorization": "Bearer "}, None),
        ({"authorization": "Basic dXNlcjpwYXNz"}, None),
        ({}, None),
    ],
)
def test_extract_key(headers: dict[str, str], expected: str | None) -> None:
    assert extract_key(headers) == expected


def test_extract_key_prefers_authorization() -> None:
    assert extract_key({"authorization": "Bearer one", "x-api-key": "two"}) == "one"
