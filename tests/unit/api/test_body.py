"""``gateway/api/body.py``: the nesting bound's bytes algorithm against a plain depth count."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from gateway import errors
from gateway.api.body import MAX_NESTING, _nesting_exceeds, decode_json

# Strings that look like structure to a naive scanner: brackets, escaped quotes and backslashes.
TRICKY_STRINGS = ["[[[[{{{{", "]]]}}}", 'say \\"[\\"', "\\\\", '"]', '\\\\"[[', "ünïcødé [", ""]


def depth(value: Any) -> int:
    """Arrays and objects nested in ``value`` (a plain count, the reference)."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def random_json(rng: random.Random, levels: int) -> Any:
    """A random document nested exactly ``levels`` deep along one branch, with siblings."""
    if levels == 0:
        return rng.choice([1, 2.5, None, True, *TRICKY_STRINGS])
    child = random_json(rng, levels - 1)
    siblings = [random_json(rng, rng.randrange(0, min(levels, 3))) for _ in range(rng.randrange(0, 3))]
    if rng.random() < 0.5:
        items = [*siblings, child]
        rng.shuffle(items)
        return items
    keys = [rng.choice(TRICKY_STRINGS) + str(i) for i in range(len(siblings) + 1)]
    return dict(zip(keys, [*siblings, child], strict=True))


@pytest.mark.parametrize("seed", range(40))
def test_nesting_check_agrees_with_a_plain_count(seed: int) -> None:
    rng = random.Random(seed)
    levels = rng.choice([1, 5, MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, MAX_NESTING + 7, 200])
    document = random_json(rng, levels)
    assert depth(document) == levels
    body = json.dumps(document, ensure_ascii=rng.random() < 0.5).encode()
    assert _nesting_exceeds(body, MAX_NESTING) is (levels > MAX_NESTING)


@pytest.mark.parametrize(("levels", "refused"), [(MAX_NESTING, False), (MAX_NESTING + 1, True), (5000, True)])
def test_untyped_body_nested_too_deep_is_40001_naming_the_field(levels: int, refused: bool) -> None:
    inner = "[" * (levels - 1) + "]" * (levels - 1)  # the body's object is one level more
    body = f'{{"model": "m", "deep": {inner}}}'.encode()
    if not refused:
        assert decode_json(body, dict[str, Any])["model"] == "m"
        return
    with pytest.raises(errors.InvalidBody) as info:
        decode_json(body, dict[str, Any])
    assert "nested" in info.value.message
    if levels < 900:  # deeper than Python's recursion limit, msgspec cannot even skip over it
        assert info.value.param == "deep"


def test_number_out_of_range_in_an_untyped_body_names_its_key() -> None:
    with pytest.raises(errors.InvalidBody) as info:
        decode_json(b'{"model": "m", "temperature": 1e400}', dict[str, Any])
    assert info.value.param == "temperature" and "`$.temperature`" in info.value.message
