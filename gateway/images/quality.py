"""Image quality pre-check: refuse too dark, too bright, blurred or tiny photos before any GPU work.

Cheap by design (about a millisecond for a phone photo, docs/precheck.md): JPEGs are decoded in
draft mode (the DCT scales by 1/2..1/8 while decoding) straight to a small grayscale copy, whose
mean luminance judges exposure and whose variance of the Laplacian judges focus. Thresholds come
from ``GATEWAY_PRECHECK_*``; their defaults were measured with ``bench/precheck.py``.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageFilter, ImageStat

from gateway.errors import ImageQualityTooLow, ImageUndecodable
from gateway.settings import Settings

WORK_SIDE = 512  # long side of the grayscale copy the checks run on (see docs/precheck.md)
LAPLACIAN = ImageFilter.Kernel((3, 3), (0, 1, 0, 1, -4, 1, 0, 1, 0), scale=1, offset=128)

Reason = Literal["too_small", "too_dark", "too_bright", "blurry"]

HINTS: dict[Reason, str] = {
    "too_small": "图片太小,请靠近一些或用更高分辨率重拍 / image too small, move closer or retake",
    "too_dark": "光线太暗,请在明亮处重拍 / too dark, retake in better light",
    "too_bright": "光线太亮或过曝,请避开强光重拍 / too bright or overexposed, avoid direct light and retake",
    "blurry": "图片模糊,请对焦清晰、拿稳手机后重拍 / blurred, hold the phone steady, focus and retake",
}


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """Refuse when mean luminance < ``dark`` or > ``bright``, Laplacian variance < ``blur``, or
    the shorter side < ``min_side`` pixels."""

    dark: float = 40.0
    bright: float = 225.0
    blur: float = 60.0
    min_side: int = 64

    @classmethod
    def from_settings(cls, settings: Settings) -> QualityThresholds:
        return cls(
            dark=settings.precheck_dark_threshold,
            bright=settings.precheck_bright_threshold,
            blur=settings.precheck_blur_threshold,
            min_side=settings.precheck_min_side,
        )


@dataclass(frozen=True, slots=True)
class QualityMeasures:
    """What the checks look at: source size, mean luminance (0-255), Laplacian variance."""

    width: int
    height: int
    luminance: float
    sharpness: float


def measure(data: bytes) -> QualityMeasures:
    """Measure one encoded image (any format Pillow reads); 40002 when it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            img.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG only; a no-op for other formats
            gray = img.convert("L")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageUndecodable(f"image could not be decoded for the quality check: {exc}") from None
    gray.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BILINEAR)
    luminance = ImageStat.Stat(gray).mean[0]
    sharpness = ImageStat.Stat(gray.filter(LAPLACIAN)).var[0]
    return QualityMeasures(width=width, height=height, luminance=luminance, sharpness=sharpness)


def verdict(
    measures: QualityMeasures, thresholds: QualityThresholds, *, source_size: tuple[int, int] | None = None
) -> Reason | None:
    """The first failed check (size, darkness, brightness, focus), or None when the image is fine.

    Exposure is judged before focus: a dark or washed-out photo also has little contrast, and
    "too dark" is the advice that fixes it.
    """
    width, height = source_size or (measures.width, measures.height)
    if min(width, height) < thresholds.min_side:
        return "too_small"
    if measures.luminance < thresholds.dark:
        return "too_dark"
    if measures.luminance > thresholds.bright:
        return "too_bright"
    if measures.sharpness < thresholds.blur:
        return "blurry"
    return None


def check_quality(
    data: bytes, thresholds: QualityThresholds, *, source_size: tuple[int, int] | None = None
) -> None:
    """Raise ImageQualityTooLow (40009, with ``hint`` and ``reason``) when the photo is unusable.

    ``source_size`` is the size the client sent, when ``data`` was already resized by intake
    (an upscaled thumbnail must still count as too small).
    """
    reason = verdict(measure(data), thresholds, source_size=source_size)
    if reason is not None:
        raise ImageQualityTooLow(f"image quality too low: {reason}", hint=HINTS[reason], reason=reason)


async def check_quality_async(
    data: bytes, thresholds: QualityThresholds, *, source_size: tuple[int, int] | None = None
) -> None:
    """:func:`check_quality` on the default executor, off the event loop."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, lambda: check_quality(data, thresholds, source_size=source_size))
