from __future__ import annotations

import hashlib

import pytest

from gateway.emulator.errors import EmulatorError
from gateway.emulator.images import MMCache, decode_data_uri, describe
from gateway.images.geometry import image_prompt_tokens
from tests.unit.emulator.conftest import data_uri, image_bytes


def test_describe_reads_size_format_colour_and_tokens() -> None:
    data = image_bytes(1920, 1080, (255, 0, 0), "PNG")
    info = describe(data, "sha", 65536, 1_310_720)
    assert (info.width, info.height, info.format, info.mean_rgb) == (1920, 1080, "PNG", "#ff0000")
    assert info.tokens == image_prompt_tokens(1080, 1920, 65536, 1_310_720) == 1222 + 2


def test_large_jpeg_is_described_without_a_full_decode() -> None:
    info = describe(image_bytes(4032, 3024, (0, 0, 255)), "sha", 65536, 1_310_720)
    assert (info.width, info.height) == (4032, 3024)
    assert info.tokens == 1230 + 2
    assert info.mean_rgb in {"#0000fe", "#0000ff"}  # JPEG rounding


@pytest.mark.parametrize("data", [b"not an image", image_bytes()[:200]])
def test_broken_images_are_400(data: bytes) -> None:
    with pytest.raises(EmulatorError) as info:
        describe(data, "sha", 65536, 1_310_720)
    assert info.value.status == 400


def test_extreme_aspect_ratio_is_400() -> None:
    with pytest.raises(EmulatorError, match="aspect ratio"):
        describe(image_bytes(4000, 10, fmt="PNG"), "sha", 65536, 1_310_720)


def test_data_uri_must_be_base64() -> None:
    data = image_bytes()
    assert decode_data_uri(data_uri(data)) == data
    with pytest.raises(EmulatorError):
        decode_data_uri("data:image/jpeg,rawbytes")
    with pytest.raises(EmulatorError):
        decode_data_uri("data:image/jpeg;base64,abc")


def test_mm_cache_counts_queries_and_hits_and_evicts_lru() -> None:
    cache = MMCache(capacity=2)
    info = describe(image_bytes(), hashlib.sha256(b"x").hexdigest(), 65536, 1_310_720)
    assert cache.get("a") is None
    cache.put("a", info)
    cache.put("b", info)
    assert cache.get("a") is info
    cache.put("c", info)  # evicts b, the least recently used
    assert cache.get("b") is None
    assert (cache.queries, cache.hits) == (3, 1)
