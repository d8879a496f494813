"""Visual-token estimates: the Qwen formula, and what vLLM computes on the images we send."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable

import pytest

from gateway.images import ImageIntake, image_prompt_tokens, smart_resize, visual_tokens
from gateway.images.geometry import AspectRatioError
from tests.unit.images import factory

BUDGET = 1_310_720


def reference_smart_resize(
    height: int, width: int, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """transformers' Qwen2-VL smart_resize, transcribed independently of gateway/images/geometry.py."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError("aspect ratio")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


# (width, height, visual tokens at the model defaults, visual tokens under the 1,310,720 budget)
KNOWN = [
    (4032, 3024, 11_844, 1_230),
    (1920, 1080, 2_040, 1_222),
    (1024, 768, 768, 768),
]
SIZES = [
    (4032, 3024),
    (3024, 4032),
    (1920, 1080),
    (1080, 1920),
    (1024, 768),
    (1280, 1024),
    (1170, 2532),
    (2532, 1170),
    (800, 600),
    (640, 480),
    (500, 500),
    (48, 48),
    (16, 3000),
    (3000, 16),
    (1, 150),
    (4000, 21),
    (33, 33),
    (1312, 960),
    (1344, 960),
    (1000, 1000),
    (1448, 905),
    (8000, 6000),
]


@pytest.mark.parametrize(("width", "height", "default_tokens", "budget_tokens"), KNOWN)
def test_known_counts(width: int, height: int, default_tokens: int, budget_tokens: int) -> None:
    assert visual_tokens(height, width) == default_tokens
    assert visual_tokens(height, width, max_pixels=BUDGET) == budget_tokens
    assert image_prompt_tokens(height, width, max_pixels=BUDGET) == budget_tokens + 2


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("max_pixels", [16_777_216, BUDGET, 262_144])
def test_smart_resize_matches_reference(width: int, height: int, max_pixels: int) -> None:
    expected = reference_smart_resize(height, width, 32, 65_536, max_pixels)
    assert smart_resize(height, width, max_pixels=max_pixels) == expected
    h_bar, w_bar = expected
    assert visual_tokens(height, width, max_pixels=max_pixels) == (h_bar // 32) * (w_bar // 32)


def test_extreme_aspect_ratio() -> None:
    with pytest.raises(AspectRatioError):
        smart_resize(10, 2100)


@pytest.mark.parametrize(("width", "height"), [s for s in SIZES if max(s) / min(s) <= 200 and max(s) <= 4032])
async def test_estimate_is_what_vllm_computes(
    width: int, height: int, make_intake: Callable[..., ImageIntake]
) -> None:
    """vLLM runs smart_resize (max_pixels = our budget) on what we send: same count as our estimate."""
    intake = make_intake()
    [image] = await intake.prepare([base64.b64encode(factory.flat(width, height)).decode()])
    vllm_h, vllm_w = reference_smart_resize(image.height, image.width, 32, 65_536, BUDGET)
    assert image.visual_tokens == (vllm_h // 32) * (vllm_w // 32) + 2
    assert image.visual_tokens == visual_tokens(height, width, max_pixels=BUDGET) + 2
    if not image.passthrough:  # resized: already on the grid, so vLLM's resize is the identity
        assert (vllm_h, vllm_w) == (image.height, image.width)
        assert image.width * image.height <= BUDGET
