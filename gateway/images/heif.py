"""HEIF/HEIC container: the largest image size its ``ispe`` properties declare, before decoding.

libheif decodes HEIC (an HEVC still, often a grid of 512 x 512 tiles) and pillow-heif converts it;
only a decoder can produce the pixels, so the file is always decoded (``needs_decode``). What it
will cost is known from the headers: every image item carries an ``ispe`` (image spatial extent)
property in ``meta/iprp/ipco``. The largest declared width and height bound the decode; the
primary image, its grid and its tiles are all covered. A file without one is malformed.
"""

from __future__ import annotations

from gateway.images.containers import ContainerError, Parsed

# Bytes per pixel while decoding: libheif's planes (up to 16-bit 4:4:4), its interleaved RGB
# output and Pillow's copy of it.
BYTES_PER_PIXEL = 12
_MAX_BOXES = 64


def parse(data: bytes) -> Parsed:
    """Parse a HEIC's declared size; ContainerError if it has no ``meta`` box or no ``ispe``."""
    meta = _top_level_box(data, b"meta")
    width = height = 0
    start = meta[0]
    while (found := data.find(b"ispe", start, meta[1])) >= 0:
        start = found + 4
        if found + 16 > meta[1]:
            break
        width = max(width, int.from_bytes(data[found + 8 : found + 12], "big"))
        height = max(height, int.from_bytes(data[found + 12 : found + 16], "big"))
    if not width or not height:
        raise ContainerError("HEIF declares no image size (ispe)")
    return Parsed(
        "HEIF",
        0,  # the decoder decides (rotation, primary item); the bound is in decoder_bytes
        0,
        1,
        data,
        needs_decode=True,
        decoder_bytes=BYTES_PER_PIXEL * width * height,
    )


def _top_level_box(data: bytes, kind: bytes) -> tuple[int, int]:
    """(start, end) of the payload of the first top-level box of ``kind``."""
    pos = 0
    for _ in range(_MAX_BOXES):
        if pos + 8 > len(data):
            break
        size = int.from_bytes(data[pos : pos + 4], "big")
        header = 8
        if size == 1:
            if pos + 16 > len(data):
                break
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = len(data) - pos
        if size < header or pos + size > len(data):
            raise ContainerError("HEIF box structure is corrupt or truncated", "truncated")
        if data[pos + 4 : pos + 8] == kind:
            return pos + header, pos + size
        pos += size
    raise ContainerError(f"HEIF has no {kind.decode()!r} box")
