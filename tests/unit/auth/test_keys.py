"""Key format: prefix, length, alphabet, CRC32 checksum; header parsing."""

from __future__ import annotations

import re

import pytest

from gateway.auth import extract_key, generate_key, hash_key, is_well_formed
from gateway.auth.keys import BASE62, KEY_LENGTH, checksum, key_id

KEY_RE = re.compile(r"^vlgw_[0-9A-Za-z]{28}_[0-9A-Za-z]{6}$")


def test_generated_keys_have_the_documented_shape() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert KEY_RE.match(key), key
        assert len(key) == KEY_LENGTH
        assert is_well_formed(key)


def test_random_part_carries_at_least_128_bits_beyond_the_display_id() -> None:
    import math

    key = generate_key()
    hidden = 28 - (len(key_id(key)) - len("vlgw_"))
    assert hidden * math.log2(len(BASE62)) >= 128


def test_checksum_is_crc32_of_the_random_part() -> None:
    import zlib

    key = generate_key()
    random_part = key[5:33]
    value = 0
    for ch in key[-6:]:
        value = value * 62 + BASE62.index(ch)
    assert value == zlib.crc32(random_part.encode())
    assert checksum(random_part) == key[-6:]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda k: k[:-1] + ("0" if k[-1] != "0" else "1"),  # checksum off by one char
        lambda k: k[:10] + ("A" if k[10] != "A" else "B") + k[11:],  # random part changed
        lambda k: "sk_" + k[5:],  # wrong prefix
        lambda k: k + "x",  # too long
        lambda k: k[:-1],  # too short
        lambda k: k.replace("_", "-"),  # wrong separator
        lambda k: k[:7] + "!" + k[8:],  # outside the alphabet
        lambda k: "",
    ],
)
def test_malformed_keys_are_recognised(mutate) -> None:
    assert not is_well_formed(mutate(generate_key()))


def test_hash_is_sha256_hex_of_the_whole_key() -> None:
    import hashlib

    key = generate_key()
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
