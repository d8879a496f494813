"""WebP container: RIFF chunk walk.

The RIFF size must fit the data (a shorter file is truncated); bytes after it are cut. ``EXIF``
and ``XMP `` chunks are dropped and their VP8X flags cleared. An animated WebP needs a decoder
to extract its first frame, so it is marked ``needs_decode``.

Pillow decodes every WebP, still or animated, through libwebp's ``WebPAnimDecoder``, which keeps
two RGBA buffers of the whole canvas (the frame being drawn and the previous one) besides the
copies Pillow makes: ``decoder_bytes`` counts the two, so a few hundred bytes declaring a
7000 x 7000 canvas are priced at their ~950 MB before anything is decoded (measured: a
4000 x 3000 WebP photo peaks at 190 MB). More than
``MAX_ANIMATION_FRAMES`` frames is refused; only the first frame is ever decoded.
"""

from __future__ import annotations

from gateway.images.containers import ContainerError, ContainerLimit, Parsed, exif_orientation
from gateway.images.limits import MAX_ANIMATION_FRAMES

_DROP = frozenset({b"EXIF", b"XMP "})
_FLAG_ALPHA = 0x10
_FLAG_EXIF = 0x08
_FLAG_XMP = 0x04
_FLAG_ANIMATION = 0x02


def parse(data: bytes) -> Parsed:
    """Parse a WebP; ContainerError if malformed or truncated."""
    riff_end = 8 + int.from_bytes(data[4:8], "little")
    if len(data) < 20 or riff_end > len(data):
        raise ContainerError("WebP is truncated (shorter than its RIFF size)", "truncated")
    view = memoryview(data)
    chunks: list[memoryview] = []
    width = height = 0
    flags = 0
    orientation = 1
    dropped = False
    has_alpha = False
    frames = 0
    pos = 12
    first = True
    while pos < riff_end:
        if pos + 8 > riff_end:
            raise ContainerError("WebP chunk structure is corrupt")
        kind = data[pos : pos + 4]
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + length + (length & 1)
        if end > riff_end:
            raise ContainerError("WebP is truncated inside a chunk", "truncated")
        payload = view[pos + 8 : pos + 8 + length]
        if first:
            width, height, flags, has_alpha = _header(kind, bytes(payload[:10]))
            first = False
        if kind == b"ANMF":
            frames += 1
            if frames > MAX_ANIMATION_FRAMES:
                raise ContainerLimit(f"WebP has more than {MAX_ANIMATION_FRAMES} frames", "frames")
        elif kind == b"EXIF":
            orientation = exif_orientation(payload)
        if kind in _DROP:
            dropped = True
        else:
            chunks.append(view[pos:end])
        pos = end
    if first:
        raise ContainerError("WebP has no image chunk")
    animated = bool(flags & _FLAG_ANIMATION)
    if animated and not frames:
        raise ContainerError("animated WebP has no frame")
    out = data
    if dropped or riff_end != len(data):
        if bytes(chunks[0][:4]) == b"VP8X":
            vp8x = bytearray(chunks[0])
            vp8x[8] &= ~(_FLAG_EXIF | _FLAG_XMP) & 0xFF
            chunks[0] = memoryview(bytes(vp8x))
        body = b"".join(chunks)
        out = b"".join((b"RIFF", (len(body) + 4).to_bytes(4, "little"), b"WEBP", body))
    return Parsed(
        "WEBP",
        width,
        height,
        orientation,
        out,
        needs_decode=animated,
        has_alpha=has_alpha,
        decoder_bytes=2 * 4 * width * height,
        frames=max(frames, 1),
    )


def _header(kind: bytes, head: bytes) -> tuple[int, int, int, bool]:
    """(width, height, VP8X flags, alpha) from the first chunk."""
    if kind == b"VP8X" and len(head) >= 10:
        flags = head[0]
        width = 1 + int.from_bytes(head[4:7], "little")
        height = 1 + int.from_bytes(head[7:10], "little")
        return width, height, flags, bool(flags & _FLAG_ALPHA)
    if kind == b"VP8 " and len(head) >= 10 and head[3:6] == b"\x9d\x01\x2a":
        width = int.from_bytes(head[6:8], "little") & 0x3FFF
        height = int.from_bytes(head[8:10], "little") & 0x3FFF
        if width and height:
            return width, height, 0, False
    if kind == b"VP8L" and len(head) >= 5 and head[0] == 0x2F:
        bits = int.from_bytes(head[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 0, bool((bits >> 28) & 1)
    raise ContainerError("WebP does not start with a VP8, VP8L or VP8X chunk")
