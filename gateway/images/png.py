"""PNG container: chunk walk from IHDR to IEND.

Dropped: text (``tEXt``, ``zTXt``, ``iTXt``: often XMP or camera data), ``eXIf``, ``tIME``, and
the APNG animation chunks (``acTL``, ``fcTL``, ``fdAT``), which leaves the default image, the one
every non-animating decoder shows. Anything after IEND is cut. No IEND: truncated, refused.
"""

from __future__ import annotations

from gateway.images.containers import ContainerError, Parsed, exif_orientation

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DROP = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME", b"acTL", b"fcTL", b"fdAT"})
_ALPHA_COLOUR_TYPES = frozenset({4, 6})


def parse(data: bytes) -> Parsed:
    """Parse a PNG; ContainerError if malformed or truncated."""
    size = len(data)
    view = memoryview(data)
    if size < 8 + 25 or data[12:16] != b"IHDR" or int.from_bytes(data[8:12], "big") != 13:
        raise ContainerError("PNG does not start with an IHDR chunk", "truncated" if size < 33 else "corrupt")
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    colour_type = data[25]
    if not width or not height or width >= 1 << 31 or height >= 1 << 31:
        raise ContainerError("PNG header has an invalid size")
    keep: list[memoryview] = [view[0:8]]
    dropped = False
    orientation = 1
    has_alpha = colour_type in _ALPHA_COLOUR_TYPES
    seen_idat = False
    pos = 8
    while True:
        if pos + 12 > size:
            raise ContainerError("PNG is truncated (no IEND chunk)", "truncated")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > size or length >= 1 << 31:
            raise ContainerError("PNG is truncated inside a chunk", "truncated")
        if not kind.isalpha():
            raise ContainerError("PNG chunk structure is corrupt")
        if kind == b"IDAT":
            seen_idat = True
        elif kind == b"tRNS":
            has_alpha = True
        elif kind == b"eXIf":
            orientation = exif_orientation(view[pos + 8 : pos + 8 + length])
        elif kind == b"IEND":
            break
        if kind in _DROP:
            dropped = True
        else:
            keep.append(view[pos:end])
        pos = end
    if not seen_idat:
        raise ContainerError("PNG has no image data")
    if not dropped and end == size:
        return Parsed("PNG", width, height, orientation, data, has_alpha=has_alpha)
    keep.append(view[pos:end])
    return Parsed("PNG", width, height, orientation, b"".join(keep), has_alpha=has_alpha)
