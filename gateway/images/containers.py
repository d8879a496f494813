"""Byte-level container parsing: format by magic bytes, size, orientation, structure, metadata.

This is the hot path for images that pass through: no pixel is decoded. Each format module
walks its container (JPEG segments, PNG chunks, GIF blocks, WebP RIFF chunks), refuses truncated
or malformed files, reads the stored size and the EXIF orientation, and returns the bytes with
privacy metadata (EXIF incl. GPS, XMP, comments, text chunks) and any extra frames or trailing
data cut out, without re-encoding. When nothing needed cutting, the input object is returned
as is, so its bytes (and the client's base64) can be reused verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Format = Literal["JPEG", "PNG", "GIF", "WEBP", "HEIF"]

MIME: dict[Format, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "HEIF": "image/heic",
}
# ISO-BMFF brands of HEIC stills (not AVIF, which pillow-heif no longer decodes).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})


class ContainerError(ValueError):
    """The bytes are not a well-formed image of an allowed format; ``reason`` says how."""

    def __init__(self, message: str, reason: str = "corrupt") -> None:
        super().__init__(message)
        self.reason = reason


class ContainerLimit(ContainerError):
    """Well-formed, but over a work limit no real camera or editor reaches (41301, not 40002)."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """What the container says, and the bytes to send on if no decode is needed."""

    format: Format
    width: int  # stored size, before orientation; 0 when only a decoder knows (HEIF)
    height: int
    orientation: int  # EXIF orientation 1..8; 1 when absent
    data: bytes  # metadata stripped, first frame only; ``is`` the input when nothing was cut
    needs_decode: bool = False  # only a decoder can produce a clean first frame (animated WebP, HEIF)
    has_alpha: bool = False
    # What decoding costs beyond the output pixels (budget.py): a progressive JPEG's full-size
    # coefficient buffer, libwebp's two canvases. Known from the headers, before any decode.
    decoder_bytes: int = 0
    progressive: bool = False  # JPEG only: draft mode cannot skip the full-size coefficients
    scans: int = 0  # JPEG only: scans in the file (progressive ones repeat the whole-image work)
    frames: int = 1  # animated formats: frames in the file (only the first is ever decoded)


def sniff(data: bytes) -> Format:
    """The format the magic bytes name; ContainerError for anything not allowed."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and _is_heif(data):
        return "HEIF"
    raise ContainerError("image is not JPEG, PNG, WebP, GIF or HEIC", "format")


def _is_heif(data: bytes) -> bool:
    size = int.from_bytes(data[0:4], "big")
    if size < 16 or size > min(len(data), 4096) or size % 4:
        return False
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, size, 4)}
    if major in _HEIF_BRANDS:
        return True
    return major in _HEIF_GENERIC_BRANDS and bool(compatible & _HEIF_BRANDS)


def exif_orientation(tiff: bytes | memoryview) -> int:
    """The Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block; 1 if absent or bad."""
    tiff = bytes(tiff[:4096]) if len(tiff) > 4096 else bytes(tiff)
    if tiff.startswith(b"Exif\x00\x00"):
        tiff = tiff[6:]
    if tiff[:4] == b"II*\x00":
        order: Literal["little", "big"] = "little"
    elif tiff[:4] == b"MM\x00*":
        order = "big"
    else:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return 1
    count = int.from_bytes(tiff[ifd : ifd + 2], order)
    for index in range(min(count, 512)):
        entry = ifd + 2 + 12 * index
        if entry + 12 > len(tiff):
            break
        if int.from_bytes(tiff[entry : entry + 2], order) == 0x0112:
            value = int.from_bytes(tiff[entry + 8 : entry + 10], order)
            return value if 1 <= value <= 8 else 1
    return 1
