"""Validate an image and bring it to the pixel budget: the CPU part of intake (run off the loop).

Passthrough rule: an image whose grid-rounded area is within the budget, with no EXIF rotation
to apply and a first frame the container walk could cut out, is sent on as the container walk
left it (metadata stripped at the byte level, no re-encode; the very input bytes when there was
nothing to strip). Pillow opens it lazily to confirm format and size; no pixel is decoded.

Everything else is decoded once: JPEG in draft mode (the DCT scales by 1/2, 1/4 or 1/8 while
decoding, so a 12 MP photo is never decoded in full when it will be shrunk), then resized
(bicubic, like the Qwen processor; a box reduce first when the ratio is over 4) to exactly
``smart_resize(h, w, min_pixels, budget)``, rotated by its EXIF orientation, and re-encoded
without metadata: PNG when some pixel is transparent, or when a lossless source (PNG, GIF) was
only rotated or cut to its first frame; else (every resized image, screenshots included) JPEG at
``image_jpeg_quality``, which encodes ~10x faster than PNG and is smaller.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pillow_heif
from PIL import Image

from gateway.errors import ImageUndecodable, PayloadTooLarge
from gateway.images import gif, heif, jpeg, png, webp
from gateway.images.containers import MIME, ContainerError, ContainerLimit, Format, Parsed, sniff
from gateway.images.geometry import AspectRatioError, exceeds_budget, smart_resize
from gateway.images.limits import check_pixels, refuse

pillow_heif.register_heif_opener()  # idempotent; adds the "HEIF" format to Pillow

PNG_COMPRESS_LEVEL = 3  # level 6 is ~1.5x slower and, on resampled screenshots, no smaller
LOSSLESS_SOURCES = frozenset({"PNG", "GIF"})
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class PixelLimits:
    """The knobs of one normalisation (settings, with a per-call pixel budget)."""

    pixel_budget: int
    min_pixels: int
    max_pixels: int
    max_side: int
    jpeg_quality: int


@dataclass(frozen=True, slots=True)
class Normalised:
    """The image to send upstream, and what it was."""

    data: bytes
    format: Format
    width: int
    height: int
    source_format: Format
    source_width: int  # as displayed (EXIF orientation applied)
    source_height: int
    passthrough: bool  # ``data`` is the input object itself

    @property
    def mime(self) -> str:
        return MIME[self.format]


def parse(data: bytes) -> Parsed:
    """Sniff and walk the container; ContainerError when it is malformed or not allowed."""
    fmt = sniff(data)
    if fmt == "JPEG":
        return jpeg.parse(data)
    if fmt == "PNG":
        return png.parse(data)
    if fmt == "GIF":
        return gif.parse(data)
    if fmt == "WEBP":
        return webp.parse(data)
    return heif.parse(data)


def checked_parse(data: bytes, limits: PixelLimits) -> Parsed:
    """``parse``, its errors as the contract's (40002, 41301), and the pixel limits on the header."""
    try:
        parsed = parse(data)
    except ContainerLimit as exc:
        raise refuse(PayloadTooLarge, f"image is over a work limit: {exc}", exc.reason) from None
    except ContainerError as exc:
        raise refuse(ImageUndecodable, f"image is not decodable: {exc}", exc.reason) from None
    if parsed.width:  # before any decoder sees it: a bomb is refused on its header alone
        check_pixels(parsed.width, parsed.height, limits.max_pixels, limits.max_side)
    return parsed


def is_passthrough(parsed: Parsed, limits: PixelLimits) -> bool:
    """Whether normalising needs no pixel work: a header parse, a walk and a hash (microseconds)."""
    if parsed.needs_decode or parsed.orientation != 1 or not parsed.width:
        return False
    return not exceeds_budget(parsed.height, parsed.width, limits.pixel_budget)


def decode(data: bytes, limits: PixelLimits, parsed: Parsed) -> tuple[Normalised, str]:
    """``normalise`` and the sha256 of its output: the job a decode worker runs (pool.py)."""
    result = normalise(data, limits, parsed)
    return result, hashlib.sha256(result.data).hexdigest()


def normalise(data: bytes, limits: PixelLimits, parsed: Parsed | None = None) -> Normalised:
    """Validate and normalise one encoded image: 40002 if undecodable, 41301 if over a limit."""
    if parsed is None:
        parsed = checked_parse(data, limits)
    elif parsed.width:
        check_pixels(parsed.width, parsed.height, limits.max_pixels, limits.max_side)
    try:
        with Image.open(io.BytesIO(parsed.data), formats=[parsed.format]) as image:
            return _normalise(data, parsed, image, limits)
    except (ImageUndecodable, PayloadTooLarge):
        raise
    except Image.DecompressionBombError:
        raise refuse(PayloadTooLarge, "image has more pixels than allowed", "pixels") from None
    except Exception as exc:  # Pillow reports broken files with many exception types
        raise refuse(ImageUndecodable, f"image is not decodable ({type(exc).__name__})", "corrupt") from None


def _normalise(data: bytes, parsed: Parsed, image: Image.Image, limits: PixelLimits) -> Normalised:
    raw_w, raw_h = image.size
    if parsed.width and (raw_w, raw_h) != (parsed.width, parsed.height):
        raise refuse(ImageUndecodable, "image header and decoder disagree on its size", "corrupt")
    check_pixels(raw_w, raw_h, limits.max_pixels, limits.max_side)
    swap = parsed.orientation >= 5
    width, height = (raw_h, raw_w) if swap else (raw_w, raw_h)
    try:
        target_h, target_w = smart_resize(
            height, width, min_pixels=limits.min_pixels, max_pixels=limits.pixel_budget
        )
    except AspectRatioError:
        raise refuse(ImageUndecodable, "image aspect ratio is over 200:1", "format") from None
    shrink = exceeds_budget(height, width, limits.pixel_budget)
    if not shrink and parsed.orientation == 1 and not parsed.needs_decode:
        return Normalised(
            parsed.data, parsed.format, width, height, parsed.format, width, height, parsed.data is data
        )
    if not shrink:
        target_h, target_w = height, width
    size = (target_h, target_w) if swap else (target_w, target_h)  # in stored orientation
    if shrink and image.format == "JPEG":
        image.draft(image.mode, size)
    image.load()
    frame = _output_mode(image)
    if frame.size != size:
        frame = frame.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    if parsed.orientation != 1:
        frame = frame.transpose(_TRANSPOSE[parsed.orientation])
    # Once resampled, pixels are not the source's any more: JPEG is ~10x cheaper to encode than
    # PNG and smaller too, even for screenshots. Lossless stays lossless only when merely rotated.
    lossless = parsed.format in LOSSLESS_SOURCES and not shrink
    fmt: Format = "PNG" if frame.mode == "RGBA" or lossless else "JPEG"
    out = io.BytesIO()
    extra = {"icc_profile": image.info["icc_profile"]} if image.info.get("icc_profile") else {}
    if fmt == "PNG":
        frame.save(out, "PNG", compress_level=PNG_COMPRESS_LEVEL, **extra)
    else:
        frame.save(out, "JPEG", quality=limits.jpeg_quality, **extra)
    return Normalised(out.getvalue(), fmt, target_w, target_h, parsed.format, width, height, False)


def _output_mode(image: Image.Image) -> Image.Image:
    """RGB, L or RGBA (only when some pixel is actually transparent)."""
    mode = image.mode
    if mode in ("RGB", "L"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":  # 16/32-bit greyscale: scale, don't clip
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        # No copy when already RGBA, and the alpha extrema read in place: a copy of a large
        # image is 4 bytes a pixel more at the peak (cost.py counts on at most three copies).
        rgba = image if mode == "RGBA" else image.convert("RGBA")
        alpha = rgba.getextrema()[-1]  # per band for a multi-band image: the last is A
        return rgba if alpha != (255, 255) else rgba.convert("RGB")
    return image.convert("RGB")
