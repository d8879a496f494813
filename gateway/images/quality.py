"""Image quality pre-check: refuse too dark, too bright, blurred or tiny photos before any GPU work.

Built for real photographs (docs/precheck.md has the corpus, the confusion table and the reasons):

* **Work copy.** JPEGs are decoded in draft mode (the DCT scales by 1/2..1/8 while decoding)
  straight to grayscale, then box-reduced to at most ``WORK_SIDE`` px on the long side, so every
  measure is relative to the picture, not to the camera's pixel count.
* **Exposure from the histogram**, never the mean. Too dark: even the brightest 1 % of the
  picture stays dim (no highlight anywhere). Too bright: even the darkest 1 % is lighter than
  mid-grey (the shadows are gone: overexposed, washed out, glare), or when the bulk of it is
  bright and textured (scene detail pushed into the highlights, shadows kept). A receipt (white
  paper, dark text), a product on white or a light-mode screenshot keeps its dark detail and has
  flat whites, and passes; a night sky keeps its stars and lamps and passes. The dark end is
  read on a copy where each pixel is the darkest of its 2x2 block, so downscaling cannot wash
  thin printed text into grey.
* **Focus from where the detail is.** The work copy is cut into tiles; in each tile with real
  contrast, the largest step between neighbours over the tile's contrast range says how steep
  its edges are (a crisp edge takes its whole range in a pixel or two, one blurred over w pixels
  about 1/w of it), whatever the contrast. That is read per direction (across, down, both
  diagonals) at the sharper tenth of the tiles, and the photo scores its blurrier direction: a
  sharp subject on a soft background passes, a shake smears one direction and is refused.
"""

from __future__ import annotations

import asyncio
import io
import math
from dataclasses import dataclass
from typing import Literal, cast

from PIL import Image, ImageChops

from gateway.errors import ImageQualityTooLow, ImageUndecodable
from gateway.settings import Settings

WORK_SIDE = 512  # long side of the grayscale copy the checks run on (docs/precheck.md: why 512)
DRAFT_SLACK = 0.9  # a JPEG's work copy may be this much smaller when its DCT scaling lands there
GRID = 8  # tiles per side for the focus measure (64 tiles of ~64x48 px on a 4:3 photo)
# a tile says something about focus when its contrast is 15 % of the photo's range (shadows to
# highlights, so a dim photo is judged like a bright one), and at least 8 grey levels (noise)
TILE_RANGE_SHARE = 0.15
MIN_TILE_RANGE = 8
SHARP_RANK = 0.9  # the focus is read at the sharper tenth of the tiles, not at the single sharpest
# neighbour steps: right, down and both diagonals (a straight shake blurs the one nearest to it)
DIRECTIONS = ((1, 0), (0, 1), (1, 1), (-1, 1))
LENGTHS = tuple(math.hypot(dx, dy) for dx, dy in DIRECTIONS)
# a picture whose darkest and brightest 1 % are less than a fifth of the grey scale apart is flat
# (fog or glare on the lens, or dim): real photographs of the corpus span 113 or more
FLAT_RANGE = 48
# over-exposure that kept its shadows: median at or over BRIGHT_BULK (3/4 of white), and bright
# neighbours (not both CLIPPED) differing by BRIGHT_TEXTURE grey levels on average over at least
# BRIGHT_TEXTURE_SHARE of the picture (paper, studio white and UI stay under 2 levels)
BRIGHT_BULK = 192
CLIPPED = 250
BRIGHT_TEXTURE = 3.0
BRIGHT_TEXTURE_SHARE = 0.1

Reason = Literal["too_small", "too_dark", "too_bright", "blurry"]

HINTS: dict[Reason, str] = {
    "too_small": "图片太小,请靠近一些或用更高分辨率重拍 / image too small, move closer or retake",
    "too_dark": "光线太暗,请在明亮处重拍 / too dark, retake in better light",
    "too_bright": "光线太亮或过曝,请避开强光重拍 / too bright or overexposed, avoid direct light and retake",
    "blurry": "图片模糊,请对焦清晰、拿稳手机后重拍 / blurred, hold the phone steady, focus and retake",
}


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """When a photo is refused (docs/precheck.md: how these were chosen).

    * too dark: the 99th percentile of grey (0-255) is under ``dark``;
    * too bright: the 1st percentile, thin dark strokes widened, is over ``bright``, or the
      scene is pushed into the highlights (``BRIGHT_BULK``, ``BRIGHT_TEXTURE``: not settings);
    * too bright or too dark (by the median): flat, 1st to 99th percentile under ``FLAT_RANGE``;
    * blurry: the focus measure (0-1, ~0.4 / the edge blur's sigma in work-copy pixels) is
      under ``blur``;
    * too small: the shorter side as sent is under ``min_side`` px.
    """

    dark: float = 96.0
    bright: float = 128.0
    blur: float = 0.30
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
    """What the checks look at: source size, grey levels (0-255) and focus (0-1)."""

    width: int
    height: int
    shadows: int  # 1st percentile, read with thin dark strokes widened
    median: int
    highlights: int  # 99th percentile
    bright_detail: float  # mean step between bright neighbours (0 when the median is under BRIGHT_BULK)
    bright_detail_share: float  # share of the picture those neighbour pairs cover
    focus: float


def measure(data: bytes) -> QualityMeasures:
    """Measure one encoded image (any format Pillow reads); 40002 when it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            target = _work_size(width, height)
            # JPEG only (a no-op for other formats): the largest DCT scaling that still leaves
            # 90 % of the work size, so a 4000 px photo decodes at 1/8 (500 px), not 1/4
            img.draft("L", (int(target[0] * DRAFT_SLACK), int(target[1] * DRAFT_SLACK)))
            gray = img.convert("L")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageUndecodable(f"image could not be decoded for the quality check: {exc}") from None
    if max(gray.size) > WORK_SIDE:
        gray = gray.resize(target, Image.Resampling.BOX)
    hist = gray.histogram()
    darkest = _widen_dark(gray)
    shadows = _percentile(darkest.histogram(), 0.01)
    median = _percentile(hist, 0.5)
    highlights = _percentile(hist, 0.99)
    bright_detail, bright_detail_share = (
        _bright_detail(gray, darkest) if median >= BRIGHT_BULK else (0.0, 0.0)
    )
    return QualityMeasures(
        width=width,
        height=height,
        shadows=shadows,
        median=median,
        highlights=highlights,
        bright_detail=bright_detail,
        bright_detail_share=bright_detail_share,
        focus=_focus(gray, max(MIN_TILE_RANGE, TILE_RANGE_SHARE * (highlights - shadows))),
    )


def _widen_dark(gray: Image.Image) -> Image.Image:
    """Each pixel as the darkest of its 2x2 block: a 1 px text stroke covers 4x the area."""
    width, height = gray.size
    if width < 2 or height < 2:
        return gray
    across = ImageChops.darker(gray.crop((0, 0, width - 1, height)), gray.crop((1, 0, width, height)))
    return ImageChops.darker(
        across.crop((0, 0, width - 1, height - 1)), across.crop((0, 1, width - 1, height))
    )


def _bright_detail(gray: Image.Image, darkest: Image.Image) -> tuple[float, float]:
    """How much texture the bright part of the picture holds (paper, backgrounds, UI are flat).

    Pairs of horizontal neighbours that are both bright, away from any darker pixel (so the
    fringe of printed text does not count: ``darkest`` is :func:`_widen_dark`'s copy), and not both
    clipped: their mean step and the share of the picture they cover.
    """
    width, height = gray.size
    if width < 3 or height < 2:
        return 0.0, 0.0
    left, right = gray.crop((0, 0, width - 2, height - 1)), gray.crop((1, 0, width - 1, height - 1))
    bright = ImageChops.darker(
        darkest.crop((0, 0, width - 2, height - 1)).point(_AT_LEAST_BRIGHT),
        darkest.crop((1, 0, width - 1, height - 1)).point(_AT_LEAST_BRIGHT),
    )
    clipped = ImageChops.darker(left.point(_CLIPPED), right.point(_CLIPPED))
    pairs = ImageChops.subtract(bright, clipped)
    steps = ImageChops.difference(left, right).histogram(mask=pairs)
    count = sum(steps)
    if count == 0:
        return 0.0, 0.0
    mean = sum(level * n for level, n in enumerate(steps)) / count
    return mean, count / (width * height)


_AT_LEAST_BRIGHT = [255 if level >= BRIGHT_BULK else 0 for level in range(256)]
_CLIPPED = [255 if level >= CLIPPED else 0 for level in range(256)]


def _work_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, WORK_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _percentile(hist: list[int], share: float) -> int:
    """The grey level under which ``share`` of the pixels lie."""
    wanted = share * sum(hist)
    seen = 0
    for level, count in enumerate(hist):
        seen += count
        if seen >= wanted:
            return level
    return 255


def _focus(gray: Image.Image, min_range: float) -> float:
    """How steep the edges of the detailed tiles are in the blurrier direction (0 none, 1 crisp).

    Per tile: the largest step between neighbours in a direction over the tile's contrast range
    (a crisp edge steps its whole range in a pixel or two; a blurred one of width w in ~1/w of it).
    Per direction, the tile at rank ``SHARP_RANK`` among those with real contrast (the sharper
    tenth: a sharp subject on a soft background counts as sharp); the photo scores its blurrier
    direction (a shake smears one direction and leaves the others crisp).
    """
    width, height = gray.size
    if width < 2 * GRID + 2 or height < 2 * GRID + 2:
        return 0.0
    inner = (1, 1, width - 1, height - 1)
    base = gray.crop(inner)
    steps = [
        ImageChops.difference(base, gray.crop((1 + dx, 1 + dy, width - 1 + dx, height - 1 + dy)))
        for dx, dy in DIRECTIONS
    ]
    stack = Image.merge("RGBA", steps)  # one crop and one getextrema per tile for all directions
    tiles: list[list[float]] = [[] for _ in DIRECTIONS]
    cols, rows = base.size
    for i in range(GRID):
        for j in range(GRID):
            box = (i * cols // GRID, j * rows // GRID, (i + 1) * cols // GRID, (j + 1) * rows // GRID)
            low, high = cast(tuple[int, int], base.crop(box).getextrema())
            if high - low < min_range:
                continue
            extrema = cast(tuple[tuple[int, int], ...], stack.crop(box).getextrema())
            for direction, (_, largest) in enumerate(extrema):
                tiles[direction].append(largest / LENGTHS[direction] / (high - low))
    if not tiles[0]:
        return 0.0  # no tile with any contrast: a flat picture
    scores: list[float] = []
    for values in tiles:
        values.sort()
        scores.append(values[min(len(values) - 1, int(len(values) * SHARP_RANK))])
    return min(scores)


def verdict(
    measures: QualityMeasures, thresholds: QualityThresholds, *, source_size: tuple[int, int] | None = None
) -> Reason | None:
    """The first failed check (size, darkness, focus, brightness), or None when the image is fine.

    Focus comes before brightness: blurring a receipt greys its text (its darkest 1 % rises)
    while an overexposed photo keeps its edges, so "blurred" is the advice that fixes the former.
    Darkness comes first: a photo without any highlight has too little contrast to judge focus.
    """
    width, height = source_size or (measures.width, measures.height)
    if min(width, height) < thresholds.min_side:
        return "too_small"
    if measures.highlights < thresholds.dark:
        return "too_dark"
    if measures.focus < thresholds.blur:
        return "blurry"
    if measures.highlights - measures.shadows < FLAT_RANGE:
        return "too_bright" if measures.median >= 128 else "too_dark"  # washed out, or dim and flat
    if measures.shadows > thresholds.bright or _scene_pushed_into_highlights(measures):
        return "too_bright"
    return None


def _scene_pushed_into_highlights(measures: QualityMeasures) -> bool:
    """Over-exposure that kept its shadows: the bulk is bright and much of it is textured.

    Paper, studio backgrounds and app UI are bright but flat (steps of 1-2 grey levels between
    bright neighbours); grass, fur or skin pushed into the highlights keeps its texture there.
    """
    return (
        measures.median >= BRIGHT_BULK
        and measures.bright_detail >= BRIGHT_TEXTURE
        and measures.bright_detail_share >= BRIGHT_TEXTURE_SHARE
    )


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
