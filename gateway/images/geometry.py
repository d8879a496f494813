"""Qwen3-VL image geometry: how many pixels and visual tokens an image becomes upstream.

Mirrors transformers' Qwen2-VL ``smart_resize`` (used by Qwen3-VL with factor 32): each side
rounded to a multiple of 32 with Python's ``round`` (half to even); scaled down with floor when
over ``max_pixels``, up with ceil when under ``min_pixels``. One visual token per 32x32 pixels,
plus 2 framing tokens per image (UPSTREAM.md).
"""

from __future__ import annotations

import math

from gateway.constants import (
    QWEN_DEFAULT_MAX_PIXELS,
    QWEN_DEFAULT_MIN_PIXELS,
    QWEN_IMAGE_FRAME_TOKENS,
    QWEN_MAX_ASPECT_RATIO,
    QWEN_PATCH_FACTOR,
)


class AspectRatioError(ValueError):
    """The image is more than 200 times wider than tall (or the reverse)."""


def smart_resize(
    height: int,
    width: int,
    factor: int = QWEN_PATCH_FACTOR,
    min_pixels: int = QWEN_DEFAULT_MIN_PIXELS,
    max_pixels: int = QWEN_DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """The (height, width) the Qwen processor resizes an image to."""
    if height <= 0 or width <= 0:
        raise ValueError("image sides must be positive")
    if max(height, width) / min(height, width) > QWEN_MAX_ASPECT_RATIO:
        raise AspectRatioError(f"absolute aspect ratio must be smaller than {QWEN_MAX_ASPECT_RATIO}")
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


def visual_tokens(
    height: int,
    width: int,
    min_pixels: int = QWEN_DEFAULT_MIN_PIXELS,
    max_pixels: int = QWEN_DEFAULT_MAX_PIXELS,
) -> int:
    """Visual tokens for one image, without the 2 framing tokens."""
    h_bar, w_bar = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
    return (h_bar // QWEN_PATCH_FACTOR) * (w_bar // QWEN_PATCH_FACTOR)


def image_prompt_tokens(
    height: int,
    width: int,
    min_pixels: int = QWEN_DEFAULT_MIN_PIXELS,
    max_pixels: int = QWEN_DEFAULT_MAX_PIXELS,
) -> int:
    """Prompt tokens one image costs: visual tokens plus the framing tokens."""
    return visual_tokens(height, width, min_pixels, max_pixels) + QWEN_IMAGE_FRAME_TOKENS


def exceeds_budget(height: int, width: int, max_pixels: int, factor: int = QWEN_PATCH_FACTOR) -> bool:
    """Whether ``smart_resize`` would scale this image down (its grid-rounded area is over budget)."""
    return (round(height / factor) * factor) * (round(width / factor) * factor) > max_pixels
