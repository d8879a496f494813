"""Cacheability policy and the client's request headers."""

from __future__ import annotations

import pytest

from gateway.cache import (
    CacheMode,
    RequestCacheControl,
    decide_mode,
    is_reproducible,
    is_storable,
    parse_cache_control,
    validate_idempotency_key,
)
from gateway.errors import InvalidBody
from tests.unit.cache.conftest import answer


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, RequestCacheControl()),
        ("", RequestCacheControl()),
        ("no-cache", RequestCacheControl(no_cache=True)),
        ("No-Cache", RequestCacheControl(no_cache=True)),
        ("no-store", RequestCacheControl(no_store=True)),
        ("max-age=0", RequestCacheControl(no_cache=True)),
        ("max-age=60", RequestCacheControl()),
        (" no-cache , no-store ", RequestCacheControl(no_cache=True, no_store=True)),
        ('no-cache="x", foo=bar', RequestCacheControl(no_cache=True)),
    ],
)
def test_parse_cache_control(header: str | None, expected: RequestCacheControl) -> None:
    assert parse_cache_control(header) == expected


def test_only_greedy_single_choice_requests_are_reproducible_by_default() -> None:
    assert is_reproducible(temperature=0)
    assert is_reproducible(temperature=0.0)
    assert not is_reproducible(temperature=0.7)
    assert not is_reproducible(temperature=None)  # upstream default samples
    assert not is_reproducible(temperature=0, n=2)


def test_operator_opt_in_caches_any_temperature_but_never_n_above_one() -> None:
    assert is_reproducible(temperature=1.0, any_temperature=True)
    assert is_reproducible(temperature=None, any_temperature=True)
    assert not is_reproducible(temperature=1.0, n=3, any_temperature=True)


def test_decide_mode() -> None:
    plain = RequestCacheControl()
    assert decide_mode(enabled=True, reproducible=True, cache_control=plain) is CacheMode.USE
    assert decide_mode(enabled=False, reproducible=True, cache_control=plain) is CacheMode.BYPASS
    assert decide_mode(enabled=True, reproducible=False, cache_control=plain) is CacheMode.BYPASS
    no_cache = parse_cache_control("no-cache")
    assert decide_mode(enabled=True, reproducible=True, cache_control=no_cache) is CacheMode.REFRESH
    no_store = parse_cache_control("no-cache, no-store")
    assert decide_mode(enabled=True, reproducible=True, cache_control=no_store) is CacheMode.BYPASS


def test_complete_answers_are_storable_and_cut_ones_are_not() -> None:
    assert is_storable(answer(finish_reason="stop"))
    assert is_storable(answer(finish_reason="length"))
    assert not is_storable(answer(finish_reason="abort"))
    assert not is_storable(answer(finish_reason=None))


@pytest.mark.parametrize("value", ["a", "order-123_retry:1", "x" * 255, "with space"])
def test_valid_idempotency_keys(value: str) -> None:
    assert validate_idempotency_key(value) == value


@pytest.mark.parametrize("value", ["", "x" * 256, "tab\there", "new\nline", "ünïcode"])
def test_invalid_idempotency_keys_are_refused_naming_the_header(value: str) -> None:
    with pytest.raises(InvalidBody) as info:
        validate_idempotency_key(value)
    assert info.value.param == "Idempotency-Key"
    assert info.value.code == 40001
