"""The cache key: stable for the same request, different for anything that changes the answer."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from gateway.cache import KeyMaterial, cache_key, fingerprint, scope_for
from gateway.cache.keys import canonical_document

IMG = [hashlib.sha256(b"photo-1").hexdigest(), hashlib.sha256(b"photo-2").hexdigest()]
BASE_SAMPLING: dict[str, Any] = {"max_tokens": 512, "temperature": 0, "top_p": 1.0}


def material(**changes: Any) -> KeyMaterial:
    fields: dict[str, Any] = {
        "image_hashes": IMG,
        "messages": "what is in this photo?",
        "model": "Qwen/Qwen3-VL-8B-Instruct",
        "preset": "describe",
        "preset_version": "3",
        "sampling": BASE_SAMPLING,
    }
    fields.update(changes)
    return KeyMaterial(**fields)


def key(**changes: Any) -> str:
    return cache_key(material(**changes), scope="app-1")


def test_same_request_same_key_regardless_of_dict_order() -> None:
    reordered = dict(reversed(list(BASE_SAMPLING.items())))
    assert key() == key(sampling=reordered) == key()
    assert len(key()) == 64


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("max_tokens", 256),
        ("temperature", 0.7),
        ("top_p", 0.9),
        ("top_k", 20),
        ("min_p", 0.05),
        ("seed", 42),
        ("stop", ["\n"]),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 0.5),
        ("repetition_penalty", 1.05),
        ("response_format", {"type": "json_object"}),
        ("logit_bias", {"151643": -100}),
    ],
)
def test_each_sampling_parameter_changes_the_key(param: str, value: Any) -> None:
    assert key(sampling={**BASE_SAMPLING, param: value}) != key()


@pytest.mark.parametrize(
    "change",
    [
        {"messages": "what is in this picture?"},
        {"messages": [{"role": "user", "content": "what is in this photo?"}]},
        {"model": "Qwen/Qwen3-VL-4B-Instruct"},
        {"preset": "ocr"},
        {"preset": None},
        {"preset_version": "4"},
        {"image_hashes": IMG[:1]},
        {"image_hashes": [*IMG, IMG[0]]},
    ],
)
def test_anything_that_changes_the_answer_changes_the_key(change: dict[str, Any]) -> None:
    assert key(**change) != key()


def test_image_order_matters() -> None:
    assert key(image_hashes=list(reversed(IMG))) != key()


def test_no_collision_by_concatenation() -> None:
    assert key(image_hashes=["ab", "c"]) != key(image_hashes=["a", "bc"])
    assert key(preset="a", preset_version="bc") != key(preset="ab", preset_version="c")
    assert key(messages=["a,b"]) != key(messages=["a", "b"])
    assert cache_key(material(), scope="a") != cache_key(material(), scope="a ")


def test_equivalent_spellings_share_a_key() -> None:
    assert key(sampling={**BASE_SAMPLING, "temperature": 0.0}) == key()
    assert key(sampling={**BASE_SAMPLING, "max_tokens": 512.0}) == key()
    assert key(sampling={**BASE_SAMPLING, "stop": "x"}) == key(sampling={**BASE_SAMPLING, "stop": ["x"]})
    assert key(sampling={**BASE_SAMPLING, "stop": []}) == key()
    assert key(sampling={**BASE_SAMPLING, "seed": None}) == key()


def test_large_seeds_are_not_rounded() -> None:
    assert key(sampling={**BASE_SAMPLING, "seed": 2**53}) != key(
        sampling={**BASE_SAMPLING, "seed": 2**53 + 1}
    )


def test_same_photo_as_url_data_uri_or_base64_gives_one_key() -> None:
    photo = b"\xff\xd8\xff\xe0 a tiny jpeg"
    b64 = base64.b64encode(photo).decode()
    fetched_from_url = photo
    from_data_uri = base64.b64decode(f"data:image/jpeg;base64,{b64}".partition(",")[2])
    from_bare_base64 = base64.b64decode(b64)
    keys = {
        key(image_hashes=[hashlib.sha256(content).hexdigest()])
        for content in (fetched_from_url, from_data_uri, from_bare_base64)
    }
    assert len(keys) == 1


def test_scope_separates_owners_unless_global() -> None:
    a = cache_key(material(), scope=scope_for("tenant-a", "key"))
    b = cache_key(material(), scope=scope_for("tenant-b", "key"))
    assert a != b
    assert scope_for("tenant-a", "global") == scope_for("tenant-b", "global")
    with pytest.raises(ValueError, match="reserved"):
        scope_for("*", "key")


def test_canonical_document_is_sorted_json() -> None:
    doc = canonical_document(material(), scope="app-1")
    assert doc.startswith(b'{"images":[')
    assert b'"sampling":{"max_tokens":512,"temperature":0,"top_p":1}' in doc


def test_fingerprint_of_bodies() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    assert fingerprint(b"raw body") == hashlib.sha256(b"raw body").hexdigest()
