"""GIF container: block walk to the end of the first frame.

The result is the header, the global colour table, the first frame (with the graphic control
extension before it, which carries its transparency) and a trailer: the first frame only, cut at
the byte level. Comment, application (XMP, looping) and plain-text extensions are dropped. The
size is the logical screen grown to the first frame's extent, as Pillow reads it.
"""

from __future__ import annotations

from gateway.images.containers import ContainerError, Parsed

_EXTENSION = 0x21
_IMAGE = 0x2C
_TRAILER = 0x3B
_GRAPHIC_CONTROL = 0xF9


def parse(data: bytes) -> Parsed:
    """Parse a GIF's first frame; ContainerError if malformed or truncated."""
    size = len(data)
    if size < 13:
        raise ContainerError("GIF is truncated", "truncated")
    view = memoryview(data)
    width = int.from_bytes(data[6:8], "little")
    height = int.from_bytes(data[8:10], "little")
    packed = data[10]
    pos = 13 + ((3 << ((packed & 7) + 1)) if packed & 0x80 else 0)
    keep: list[memoryview] = [view[0:pos]]
    dropped = False
    while True:
        if pos >= size:
            raise ContainerError("GIF is truncated before its first frame", "truncated")
        block = data[pos]
        if block == _EXTENSION:
            if pos + 2 > size:
                raise ContainerError("GIF is truncated", "truncated")
            end = _skip_sub_blocks(data, pos + 2)
            if data[pos + 1] == _GRAPHIC_CONTROL:
                keep.append(view[pos:end])
            else:
                dropped = True
            pos = end
        elif block == _IMAGE:
            break
        elif block == _TRAILER:
            raise ContainerError("GIF has no image")
        else:
            raise ContainerError("GIF block structure is corrupt")
    if pos + 11 > size:
        raise ContainerError("GIF is truncated in a frame header", "truncated")
    left, top, frame_w, frame_h = (
        int.from_bytes(data[pos + i : pos + i + 2], "little") for i in (1, 3, 5, 7)
    )
    frame_packed = data[pos + 9]
    lzw = pos + 10 + ((3 << ((frame_packed & 7) + 1)) if frame_packed & 0x80 else 0)
    if lzw >= size:
        raise ContainerError("GIF is truncated in a frame header", "truncated")
    end = _skip_sub_blocks(data, lzw + 1)
    width, height = max(width, left + frame_w), max(height, top + frame_h)
    if not frame_w or not frame_h or not width or not height:
        raise ContainerError("GIF frame has a zero size")
    if not dropped and end + 1 == size and data[end] == _TRAILER:
        return Parsed("GIF", width, height, 1, data)
    keep.append(view[pos:end])
    keep.append(memoryview(b";"))
    return Parsed("GIF", width, height, 1, b"".join(keep))


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    """The offset just after a chain of data sub-blocks and its terminator."""
    size = len(data)
    while True:
        if pos >= size:
            raise ContainerError("GIF is truncated inside a frame", "truncated")
        length = data[pos]
        pos += 1 + length
        if length == 0:
            return pos
