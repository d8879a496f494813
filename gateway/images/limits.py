"""Refusals with a machine-readable reason, and the per-request limits checked before any work.

Every image error carries ``reason`` (rendered as ``reason`` in the app envelope and
used as the ``gateway_image_refusals{reason}`` label), one of the short words below.
"""

from __future__ import annotations

from typing import TypeVar

from gateway.errors import GatewayError, PayloadTooLarge, TooManyImages

E = TypeVar("E", bound=GatewayError)

# Reasons, by contract code.
#   40002 undecodable: "base64", "format", "truncated", "corrupt"
#   40003 url refused: "scheme", "credentials", "port", "host", "address", "malformed"
#   40004 fetch failed: "dns", "connect", "status", "timeout", "content_type", "redirects", "network"
#   40005: "count"    40006: "context"
#   41301: "bytes", "pixels", "scans", "frames" (work limits), "memory", "work" (CPU deadline)
#   50301: "busy" (no decoder or decode memory free before the deadline)


def refuse(cls: type[E], message: str, reason: str) -> E:
    """An image error of ``cls`` whose ``reason`` names why."""
    return cls(message, reason=reason)


def reason_of(err: GatewayError) -> str:
    """The refusal reason of an error raised by this package (a fallback for foreign ones)."""
    reason = err.reason
    return reason if isinstance(reason, str) else "other"


def check_count(count: int, max_images: int) -> None:
    """40005 when a request carries more images than allowed."""
    if count > max_images:
        raise refuse(TooManyImages, f"{count} images in one request; at most {max_images} allowed", "count")


def check_encoded_size(size: int, max_bytes: int, what: str = "image") -> None:
    """41301 when an encoded image is over the byte limit."""
    if size > max_bytes:
        raise refuse(
            PayloadTooLarge, f"{what} is {size} bytes; at most {max_bytes} bytes allowed per image", "bytes"
        )


def check_pixels(width: int, height: int, max_pixels: int, max_side: int) -> None:
    """41301 when a decoded image would be over the pixel or side limit (decompression bombs)."""
    if width > max_side or height > max_side:
        raise refuse(
            PayloadTooLarge, f"image is {width}x{height} pixels; at most {max_side} pixels per side", "pixels"
        )
    if width * height > max_pixels:
        raise refuse(
            PayloadTooLarge,
            f"image is {width}x{height} = {width * height} pixels; at most {max_pixels} allowed",
            "pixels",
        )


# Work limits no real camera, phone or editor reaches (docs/security.md). A file over one is
# refused from the byte walk, before any decode.
MAX_JPEG_SCANS = 32  # phones write ~10 scans, libjpeg's progressive script 10, mozjpeg <= ~12
MAX_ANIMATION_FRAMES = 1_000  # WebP ANMF chunks; only the first frame is decoded anyway
